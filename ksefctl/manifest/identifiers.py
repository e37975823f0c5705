"""KSeF context identifiers: NIP check digits and InternalId shape."""

from __future__ import annotations

from ksefctl.manifest.model import ContextId

# The checks live with the other shared words, so that parse_context uses the same ones.
from ksefctl.vocabulary import internal_id_problem as internal_id_problem
from ksefctl.vocabulary import is_valid_nip as is_valid_nip
from ksefctl.vocabulary import nip_check_digit as nip_check_digit
from ksefctl.vocabulary import nip_problem as nip_problem


def context_of(nip: str | None, internal_id: str | None) -> ContextId:
    if nip is not None:
        return ContextId("Nip", nip)
    assert internal_id is not None
    return ContextId("InternalId", internal_id)

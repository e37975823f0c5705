"""Two owners whose templates render the same secret path never overwrite each other.

Given owner acme holding ``ksef/sim/{nip}/erp``, when a second manifest
(owner other-team, same default path, same token name and NIP) is applied,
then its apply fails for that context with one line naming acme, acme's
secret is untouched, and acme's next plan has nothing to do.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import NIPS, World

NIP = NIPS[0]
ERP = f"""\
contexts:
  - nip: "{NIP}"
    tokens:
      - name: erp
        permissions: [InvoiceRead]
"""


pytestmark = pytest.mark.usefixtures("roomy_limits")


def test_a_second_owner_cannot_take_the_path_over(world: World) -> None:
    acme = world.manifest(ERP, name="acme.yaml", owner="acme")
    other = world.manifest(ERP, name="other.yaml", owner="other-team")
    assert world.ksefctl("apply", "-f", str(acme), "--auto-approve").code == 0
    held = world.secret(NIP, "erp")

    refused = world.ksefctl("apply", "-f", str(other), "--auto-approve")

    assert refused.code == 1, refused
    assert f"Nip:{NIP} (other-team)" in refused.err
    assert "belongs to owner 'acme'" in refused.err and "Traceback" not in refused.err
    assert world.secret(NIP, "erp") == held
    assert len(world.tokens(NIP)) == 1  # other-team made no token it could not store
    again = world.ksefctl("plan", "-f", str(acme), "--detailed-exitcode")
    assert again.code == 0 and "No changes" in again.out, again


def test_a_path_written_by_something_else_is_left_alone(world: World) -> None:
    world.vault.secrets.kv.v2.create_or_update_secret(
        path=f"ksef/sim/{NIP}/erp", mount_point=world.bao.mount, secret={"note": "by hand"}
    )
    refused = world.ksefctl("apply", "-f", str(world.manifest(ERP)), "--auto-approve")
    assert refused.code == 1 and "not written by ksefctl" in refused.err, refused
    assert world.secret(NIP, "erp")["data"] == {"note": "by hand"}
    assert world.tokens(NIP) == []

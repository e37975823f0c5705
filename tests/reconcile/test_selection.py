"""``--nip`` and ``--shard K/N``: which contexts a run is about."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ksefctl.errors import UsageError
from ksefctl.manifest.identifiers import nip_check_digit
from ksefctl.manifest.model import AuthSpec, ContextId, Desired, DesiredContext, Policy, SecretRef
from ksefctl.reconcile.selection import Shard, select, selector


def valid_nips(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    nips: list[str] = []
    while len(nips) < count:
        head = f"{rng.randrange(10**8, 10**9):09d}"
        digit = nip_check_digit(head)
        if digit is not None:
            nips.append(head + str(digit))
    return nips


def desired(contexts: list[ContextId], owner: str = "acme") -> Desired:
    def one(context: ContextId) -> DesiredContext:
        auth = AuthSpec("certificate", SecretRef("secret", f"ksef-admin/{context.nip}"))
        return DesiredContext(owner, context, "test", "http://sim/v2", auth, ())

    policy = Policy(
        owner, "test", "http://sim/v2", "secret", "ksef/{nip}/{token}", tuple(map(one, contexts))
    )
    return Desired((policy,))


def names(selected: Desired) -> list[str]:
    return [str(c.context) for c in selected.contexts]


@pytest.mark.parametrize("text", ["", "1", "0/3", "4/3", "1/0", "a/b", "1/2/3", "-1/2"])
def test_malformed_shards_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="--shard"):
        Shard.parse(text)


def test_shard_parse_accepts_spaces_and_counts_from_one() -> None:
    assert Shard.parse(" 2/8 ") == Shard(2, 8)
    assert Shard.parse("1/1").owns(ContextId("Nip", "5265877635"))


@given(st.integers(min_value=1, max_value=12))
def test_shards_partition_the_contexts(count: int) -> None:
    contexts = [ContextId("Nip", nip) for nip in valid_nips(60)]
    everything = desired(contexts)
    parts = [names(select(everything, shard=Shard(k, count))) for k in range(1, count + 1)]
    flat = [name for part in parts for name in part]
    assert sorted(flat) == sorted(map(str, contexts))  # each context in exactly one shard


def test_shard_membership_does_not_depend_on_manifest_order_or_size() -> None:
    contexts = [ContextId("Nip", nip) for nip in valid_nips(40)]
    shard = Shard(3, 5)
    before = set(names(select(desired(contexts), shard=shard)))
    grown = contexts[::-1] + [ContextId("Nip", nip) for nip in valid_nips(20, seed=99)]
    after = set(names(select(desired(grown), shard=shard)))
    assert before <= after
    assert 0 < len(before) < len(contexts)  # a real split, not all or nothing


def test_nip_selects_the_nip_and_its_internal_ids() -> None:
    nip, other = valid_nips(2)
    contexts = [
        ContextId("Nip", nip),
        ContextId("InternalId", f"{nip}-00001"),
        ContextId("Nip", other),
    ]
    assert names(select(desired(contexts), [nip])) == [f"Nip:{nip}", f"InternalId:{nip}-00001"]
    assert names(select(desired(contexts), [f"{nip}-00001"])) == [f"InternalId:{nip}-00001"]
    assert names(select(desired(contexts), [nip, other])) == list(map(str, contexts))
    assert names(select(desired(contexts))) == list(map(str, contexts))


def test_nip_and_shard_combine() -> None:
    contexts = [ContextId("Nip", nip) for nip in valid_nips(30)]
    shard = Shard(1, 2)
    inside = next(c for c in contexts if shard.owns(c))
    outside = next(c for c in contexts if not shard.owns(c))
    keep = selector([inside.value, outside.value], shard)
    assert keep(inside) and not keep(outside)
    assert names(select(desired(contexts), [inside.value, outside.value], shard)) == [str(inside)]


def test_selection_keeps_owners_whose_contexts_all_fell_out() -> None:
    # The owner must survive: --prune reads its settings to find vanished contexts.
    nip, other = valid_nips(2)
    selected = select(desired([ContextId("Nip", nip)]), [other])
    assert [p.owner for p in selected.policies] == ["acme"] and not selected.contexts

"""Observe one context: what KSeF lists and what Vault holds.

Only reads.  A no-op run is nothing but these requests: one token list page
per context (Revoked tokens are filtered out by KSeF, so the list stays short
however long a context has lived) plus one Vault read per token name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from ksefctl.ksef import Session, TokenInfo
from ksefctl.manifest import marker
from ksefctl.manifest.model import ContextId, Policy
from ksefctl.reconcile.model import ObservedContext, ObservedSecret, ObservedToken
from ksefctl.vault import TokenSecretState, VaultStore
from ksefctl.vocabulary import NOT_REVOKED, TokenStatus


def to_observed_token(info: TokenInfo) -> ObservedToken:
    return ObservedToken(
        reference_number=info.reference_number,
        status=info.status,
        permissions=frozenset(info.permissions),
        description=info.description,
        created=info.created,
        last_used=info.last_used,
        author=f"{info.author_type}:{info.author_value}",
        marker=marker.decode(info.description),
    )


def to_observed_secret(state: TokenSecretState) -> ObservedSecret:
    return ObservedSecret(
        secret=state.secret,
        exists=state.exists,
        version=state.version,
        reference_number=state.reference_number,
        created=state.created,
        revoked_reason=state.deleted_reason,
        revoked_policy=state.revoked_policy,
        adopted_from=state.adopted_from,
        owner=state.owner,
        rotation_of=state.rotation_of,
        rotation_no_overlap=state.rotation_no_overlap,
    )


async def observe_context(
    policy: Policy,
    context: ContextId,
    declared: Iterable[str],
    session: Session,
    store: VaultStore,
) -> ObservedContext:
    listed = await session.list_tokens(statuses=NOT_REVOKED)
    tokens = tuple(to_observed_token(info) for info in listed if info.status != TokenStatus.REVOKED)
    names = set(declared)
    names.update(t.marker.token for t in tokens if t.marker and t.marker.owner == policy.owner)
    ordered = sorted(names)
    states = await asyncio.gather(
        *(store.read_token_state(policy.secret_for(context, name)) for name in ordered)
    )
    secrets = {name: to_observed_secret(state) for name, state in zip(ordered, states, strict=True)}
    moved = await _moved(policy, context, set(declared), secrets, store)
    return ObservedContext(
        owner=policy.owner, context=context, tokens=tokens, secrets=secrets, moved=moved
    )


async def _moved(
    policy: Policy,
    context: ContextId,
    declared: set[str],
    secrets: dict[str, ObservedSecret],
    store: VaultStore,
) -> dict[str, ObservedSecret]:
    """Secrets still at a ``spec.vault.movedFrom`` path, for names never written at their path.

    Only then, so a no-op run after the move costs nothing more.
    """
    if not policy.vault_moved_from:
        return {}
    wanted = [n for n in sorted(declared) if n in secrets and secrets[n].version == 0]
    found: dict[str, ObservedSecret] = {}
    for name in wanted:
        for ref in policy.moved_from(context, name):
            state = to_observed_secret(await store.read_token_state(ref))
            if state.exists and state.owner == policy.owner:
                found[name] = state
                break
    return found

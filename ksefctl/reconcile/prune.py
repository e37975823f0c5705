"""``--prune``: contexts that left the manifests but still hold an owner's secrets in Vault.

The owner's secrets are the only memory of where it once had tokens (SPEC
principle 1: no state file).  A vanished context is logged into with the
owner's ``spec.auth`` and observed with nothing declared; the planner's prune
rule then revokes what this owner still has there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from ksefctl.errors import KsefctlError
from ksefctl.manifest.model import Desired, DesiredContext, Policy
from ksefctl.reconcile.settings import Key
from ksefctl.vault import VaultStore
from ksefctl.vocabulary import ContextId, parse_context

log = logging.getLogger("ksefctl.engine")


@dataclass(frozen=True)
class PruneScope:
    """What ``--prune`` may clean: contexts of these owners that no manifest declares.

    ``declared`` holds every context of the manifests as loaded, before
    ``--nip``/``--shard`` narrowed the run, so that a narrowed run never takes
    an unselected context for a vanished one; ``selected`` applies the same
    selectors to vanished contexts, so sharded runners prune each exactly once.
    """

    declared: frozenset[Key]
    selected: Callable[[ContextId], bool] = lambda context: True


@dataclass
class Vanished:
    """What the owners' Vault listings say beyond the manifests."""

    contexts: dict[Key, tuple[Policy, DesiredContext]] = field(default_factory=dict)
    # Token names of every listed secret, per context: observed too, so that a
    # secret whose token is gone gets deleted.
    names: dict[Key, set[str]] = field(default_factory=dict)


async def find_vanished(desired: Desired, store: VaultStore, scope: PruneScope) -> Vanished:
    found = Vanished()
    listings = await asyncio.gather(
        *(
            store.list_owner_secrets(p.vault_mount, p.vault_path_template, p.owner)
            for p in desired.policies
        )
    )
    for policy, secrets in zip(desired.policies, listings, strict=True):
        for _, metadata in secrets:
            # A manifest of another environment prunes its own contexts, not these.
            if metadata.get("environment") != policy.environment:
                continue
            try:
                context = parse_context(metadata.get("context", ""))
            except ValueError:
                continue
            key = (policy.owner, context)
            if metadata.get("token"):
                found.names.setdefault(key, set()).add(metadata["token"])
            if key in scope.declared or key in found.contexts or not scope.selected(context):
                continue
            auth = policy.auth_for(context)
            if auth is None:
                raise KsefctlError(
                    f"--prune found {context} of owner {policy.owner} in Vault, but the "
                    "manifest has no spec.auth to log into it with"
                )
            log.info("pruning %s of owner %s: not in any manifest", context, policy.owner)
            found.contexts[key] = (
                policy,
                DesiredContext(
                    owner=policy.owner,
                    context=context,
                    environment=policy.environment,
                    base_url=policy.base_url,
                    auth=auth,
                    tokens=(),
                ),
            )
    return found

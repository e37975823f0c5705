"""What the executor may do in one context, whatever the plan in its hands says.

The planner never emits a change these rules refuse; the rules exist for the
changes it did not make — a saved plan edited between review and ``apply``
(SPEC principle 7), or a bug.  They are the executor's own, independent
reading of the owner's policy, so defence does not rest on the planner alone:

* a change belongs to the context and owner it is carried out in;
* a secret is written or deleted only at the path the owner's policy computes
  for that context and token name — never at login material, and never where
  Vault's metadata names another owner (or no owner: not written by ksefctl);
* a token is created only as the manifest declares it (name, permissions,
  description), and supersedes only its own predecessor (a managed token of
  that name, or an Active hand-made one when adopting);
* a token is revoked only when its ownership marker names this owner and
  this token name, or when this owner's secret records it as ``adoptedFrom``;
* the token Vault holds for a declared name, and its secret, go only for
  disuse, and only under the definition the manifest has now.

Pure: no I/O.  :func:`refusal` returns why a change is refused, or None.
"""

from __future__ import annotations

from dataclasses import dataclass

from ksefctl.manifest.model import DesiredContext, DesiredToken, Policy, SecretRef
from ksefctl.reconcile.model import Action, Change, ObservedContext, ObservedToken
from ksefctl.reconcile.planner import token_policy_digest
from ksefctl.vocabulary import TokenStatus


@dataclass(frozen=True)
class Scope:
    """Everything the rules read about one context."""

    policy: Policy
    declared: DesiredContext | None  # None or no tokens: a context being pruned
    observed: ObservedContext
    # Login material of every context in the run: never a token's secret.
    protected: frozenset[SecretRef] = frozenset()

    def declared_token(self, name: str) -> DesiredToken | None:
        tokens = self.declared.tokens if self.declared is not None else ()
        return next((t for t in tokens if t.name == name), None)

    def token(self, reference_number: str) -> ObservedToken | None:
        return next(
            (t for t in self.observed.tokens if t.reference_number == reference_number), None
        )


def refusal(change: Change, scope: Scope) -> str | None:
    """Why the executor must not carry out ``change`` in ``scope``; None if it may."""
    owner = scope.policy.owner
    if change.owner != owner or scope.observed.owner != owner:
        return f"owner {change.owner!r} does not own this run's context of {owner!r}"
    if change.context != scope.observed.context:
        return f"the change names {change.context}, not this context"
    problem = _secret_problem(change, scope)
    if problem:
        return problem
    if change.action.creates_token:
        return _creation_problem(change, scope)
    if change.action is Action.MOVE:
        return _move_problem(change, scope)
    return _revocation_problem(change, scope)


def _move_problem(change: Change, scope: Scope) -> str | None:
    if scope.declared_token(change.token) is None:
        return f"token {change.token!r} is not declared in {change.context}"
    source = change.moved_from
    if source is None or change.secret is None or change.reference_number is None:
        return "a move names no source, target or token"
    if source not in scope.policy.moved_from(change.context, change.token):
        return f"{source} is not a spec.vault.movedFrom path of token {change.token!r}"
    if source in scope.protected:
        return f"{source} holds login material; no change may write or delete it"
    if change.delete_secret or change.permissions or change.description:
        return "a move changes nothing but where the secret is"
    moved = scope.observed.moved.get(change.token)
    if moved is None or moved.secret != source or moved.owner != scope.policy.owner:
        return f"{source} does not hold a secret of owner {scope.policy.owner!r}"
    token = scope.token(change.reference_number)
    if token is None or not _managed_as(token, scope.policy.owner, change.token):
        return _not_ours(change, scope)
    return None


def _secret_problem(change: Change, scope: Scope) -> str | None:
    if change.secret is None:
        return None
    if change.secret in scope.protected:
        return f"{change.secret} holds login material; no change may write or delete it"
    expected = scope.policy.secret_for(change.context, change.token)
    if change.secret != expected:
        return (
            f"secret {change.secret} is not where owner {scope.policy.owner!r} keeps "
            f"token {change.token!r} (that is {expected})"
        )
    held = scope.observed.secrets.get(change.token)
    if held is not None and held.version > 0 and held.owner != scope.policy.owner:
        if held.owner is None:
            return (
                f"secret {change.secret} was not written by ksefctl (no owner in its "
                "metadata); it is never written over or deleted"
            )
        return (
            f"secret {change.secret} belongs to owner {held.owner!r}; two owners cannot "
            "share a secret path (give one of them another spec.vault.path)"
        )
    return None


def _creation_problem(change: Change, scope: Scope) -> str | None:
    declared = scope.declared_token(change.token)
    if declared is None:
        return f"token {change.token!r} is not declared in {change.context}"
    if change.secret is None:
        return f"token {change.token!r} would be created without a secret to store it in"
    if change.permissions != declared.permissions:
        return f"permissions of token {change.token!r} differ from the manifest's"
    if change.description != declared.description:
        return f"description of token {change.token!r} differs from the manifest's"
    if change.delete_secret:
        return f"a {change.action.name.lower()} of {change.token!r} cannot delete its secret"
    if change.reference_number is None:
        return None
    if change.action is Action.CREATE:
        return "a create supersedes no token"
    predecessor = scope.token(change.reference_number)
    if predecessor is None:
        return f"token {change.reference_number} to supersede is not in {change.context}"
    if change.action is Action.ADOPT:
        if predecessor.marker is not None or predecessor.status != TokenStatus.ACTIVE:
            return f"token {change.reference_number} is not an Active hand-made token to adopt"
        return None
    if not _managed_as(predecessor, scope.policy.owner, change.token):
        return _not_ours(change, scope)
    return None


def _revocation_problem(change: Change, scope: Scope) -> str | None:
    declared = scope.declared_token(change.token)
    if change.delete_secret and change.secret is None:
        return f"no secret named to delete for {change.token!r}"
    if change.reference_number is None:
        # Only a dead token's secret: never the secret of a declared name.
        if not change.delete_secret:
            return "a revocation names no token"
        if declared is not None:
            return f"token {change.token!r} is declared; its secret is not deleted alone"
        return None
    token = scope.token(change.reference_number)
    if token is None:
        return f"token {change.reference_number} is not in {change.context}"
    held_state = scope.observed.secrets.get(change.token)
    adopted = (
        token.marker is None
        and held_state is not None
        and held_state.adopted_from == change.reference_number
    )
    if not (adopted or _managed_as(token, scope.policy.owner, change.token)):
        return _not_ours(change, scope)
    held = (
        held_state is not None
        and held_state.exists
        and held_state.reference_number == change.reference_number
    )
    if declared is not None and (held or change.delete_secret):
        disuse = (
            declared.revoke_if_unused_for is not None
            and change.policy_digest == token_policy_digest(declared)
        )
        if not disuse:
            return (
                f"token {change.reference_number} is what Vault holds for declared token "
                f"{change.token!r}; it is revoked only for disuse under the current manifest"
            )
    return None


def _managed_as(token: ObservedToken, owner: str, name: str) -> bool:
    return token.marker is not None and token.marker.owner == owner and token.marker.token == name


def _not_ours(change: Change, scope: Scope) -> str:
    return (
        f"token {change.reference_number} is not managed by owner {scope.policy.owner!r} "
        f"as {change.token!r}"
    )

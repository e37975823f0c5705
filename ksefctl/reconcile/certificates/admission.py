"""What the certificate executor may do in one context, whatever the plan in its hands says.

The executor's own reading of the owner's policy (SPEC principle 7), pure:

* a change belongs to this run's owner and context;
* a certificate is enrolled only as the manifest declares it (name, type,
  key algorithm, validFrom) and stored only at the path the policy computes
  for that name — never over a secret another owner (or no owner) wrote;
* a REPLACE supersedes only the certificate Vault holds for that name;
* a certificate is revoked only when its ownership marker names this owner,
  this context and the change's name, and never the one Vault holds for a
  declared name; a secret is deleted only for a name no longer declared,
  and only when it holds the certificate revoked (or that one is dead).
"""

from __future__ import annotations

from ksefctl.manifest.model import DesiredCertificates, DesiredContext, Policy
from ksefctl.reconcile.certificates.model import CertificateChange, ObservedCertificates
from ksefctl.reconcile.certificates.planner import ACTIVE, SUPERSEDED, UNSPECIFIED
from ksefctl.reconcile.model import Action


def refusal(
    change: CertificateChange,
    policy: Policy,
    context: DesiredContext,
    observed: ObservedCertificates,
) -> str | None:
    if change.owner != policy.owner or context.owner != policy.owner:
        return f"owner {change.owner!r} does not own this run's context of {policy.owner!r}"
    if change.context != context.context:
        return f"the change names {change.context}, not this context"
    declared = context.certificates or DesiredCertificates((), "", "")
    expected = declared.secret_for(policy.owner, context.environment, context.context, change.name)
    if change.secret is not None and change.secret != expected:
        return (
            f"secret {change.secret} is not where owner {policy.owner!r} keeps "
            f"certificate {change.name!r} (that is {expected})"
        )
    secret = observed.secrets.get(change.name)
    writes = change.action in (Action.CREATE, Action.REPLACE) or change.delete_secret
    if writes and secret is not None and secret.version and secret.owner != policy.owner:
        return f"{expected} was not written by ksefctl for owner {policy.owner!r}"
    item = declared.named(change.name)
    held = secret.serial_number if secret is not None and secret.exists else None
    if change.action in (Action.CREATE, Action.REPLACE):
        if item is None:
            return f"certificate {change.name!r} is not declared in {context.context}"
        wanted = (item.type, item.key_algorithm, item.valid_from, item.secret)
        if (
            change.certificate_type,
            change.key_algorithm,
            change.valid_from,
            change.secret,
        ) != wanted:
            return f"certificate {change.name!r} differs from the manifest's"
        if change.delete_secret or change.revocation_reason:
            return f"a {change.action.name.lower()} of {change.name!r} revokes nothing itself"
        if change.serial_number is None:
            return None
        if change.action is Action.CREATE:
            return "a create supersedes no certificate"
        if change.serial_number != held:
            return f"certificate {change.serial_number} is not what Vault holds for {change.name!r}"
        return _not_managed(change, policy, context, observed)
    if change.action is not Action.REVOKE:
        return f"certificates are not {change.action.name.lower()}ed"
    if change.delete_secret:
        if item is not None:
            return f"certificate {change.name!r} is declared; its secret is not deleted"
        if change.secret != expected:
            return f"no secret of {change.name!r} named to delete"
    elif change.secret is not None:
        return "a revocation names a secret it does not delete"
    if change.serial_number is None:
        if not change.delete_secret:
            return "a revocation names no certificate"
        if held is not None:
            certificate = observed.by_serial(held)
            if certificate is not None and certificate.status == ACTIVE:
                return f"{expected} holds the live certificate {held}; revoke that instead"
        return None
    if change.revocation_reason not in (SUPERSEDED, UNSPECIFIED):
        return f"unknown revocation reason {change.revocation_reason!r}"
    if item is not None and change.serial_number == held:
        return (
            f"certificate {change.serial_number} is what Vault holds for declared "
            f"certificate {change.name!r}"
        )
    if change.delete_secret and change.serial_number != held:
        return f"{expected} does not hold certificate {change.serial_number}"
    return _not_managed(change, policy, context, observed)


def _not_managed(
    change: CertificateChange,
    policy: Policy,
    context: DesiredContext,
    observed: ObservedCertificates,
) -> str | None:
    assert change.serial_number is not None
    certificate = observed.by_serial(change.serial_number)
    if certificate is None:
        return f"certificate {change.serial_number} is not among the subject's certificates"
    marker = certificate.marker
    if (
        marker is None
        or marker.owner != policy.owner
        or marker.context != context.context.value
        or marker.name != change.name
    ):
        return (
            f"certificate {change.serial_number} is not managed by owner {policy.owner!r} "
            f"as {change.name!r} in {context.context}"
        )
    return None

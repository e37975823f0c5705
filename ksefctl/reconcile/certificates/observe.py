"""Observe the certificates of the subject logged into one context, and their Vault secrets.

Reads only: one ``POST /certificates/query`` (a single page until the subject
holds more than 50 certificates, revoked and expired ones included) plus one
Vault read per declared name and per name an ownership marker of this owner
and context carries.  The data read from Vault is dropped at once: only the
serial number, type, key algorithm and time stored are kept, never the key.
"""

from __future__ import annotations

import asyncio

from ksefctl.ksef import Session
from ksefctl.ksef.certificates import CertificateInfo
from ksefctl.manifest.certificates import decode
from ksefctl.manifest.model import DesiredCertificates, DesiredContext, Policy
from ksefctl.reconcile.certificates.model import (
    CertificateSecret,
    ObservedCertificate,
    ObservedCertificates,
)
from ksefctl.vault import VaultStore
from ksefctl.vault.kv import parse_time
from ksefctl.vocabulary import SecretRef


def to_observed(info: CertificateInfo) -> ObservedCertificate:
    return ObservedCertificate(
        serial_number=info.serial_number,
        name=info.name,
        type=info.type,
        status=info.status,
        valid_from=info.valid_from,
        valid_to=info.valid_to,
        requested=info.requested,
        marker=decode(info.name),
    )


async def read_secret(store: VaultStore, ref: SecretRef) -> CertificateSecret:
    current = await store.client.read(ref)
    data = current.data or {}
    exists = current.live and bool(data.get("certificate")) and bool(data.get("privateKey"))

    def text(key: str) -> str | None:
        value = data.get(key) if exists else None
        return str(value) if value else None

    return CertificateSecret(
        secret=ref,
        exists=exists,
        version=current.number,
        serial_number=text("serialNumber"),
        certificate_type=text("type"),
        key_algorithm=text("keyAlgorithm"),
        created=parse_time(data.get("createdAt")) if exists else None,
        owner=current.custom_metadata.get("owner"),
    )


def secret_names(
    policy: Policy, context: DesiredContext, certificates: tuple[ObservedCertificate, ...]
) -> list[str]:
    declared = context.certificates
    names = {c.name for c in declared.items} if declared else set()
    names.update(
        c.marker.name
        for c in certificates
        if c.marker and c.marker.owner == policy.owner and c.marker.context == context.context.value
    )
    return sorted(names)


async def observe(
    policy: Policy, context: DesiredContext, session: Session, store: VaultStore
) -> ObservedCertificates:
    declared = context.certificates or DesiredCertificates((), "", "")
    listed = await session.certificates.query()
    certificates = tuple(to_observed(info) for info in listed)
    names = secret_names(policy, context, certificates)
    refs = [
        declared.secret_for(policy.owner, context.environment, context.context, name)
        for name in names
    ]
    states = await asyncio.gather(*(read_secret(store, ref) for ref in refs))
    return ObservedCertificates(certificates, dict(zip(names, states, strict=True)))

"""``status --certificates``: every KSeF certificate of each context's subject, managed or not.

Read-only, like the rest of status: the rows come from what the certificate
kind observed (one ``POST /certificates/query`` per context), or from one
query more where the manifest declares no certificates for the context.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ksefctl.manifest.model import DesiredContext, Policy
from ksefctl.reconcile.certificates.model import ObservedCertificates
from ksefctl.reconcile.certificates.planner import renewal_due


@dataclass(frozen=True)
class CertificateRow:
    owner: str
    context: str
    serial_number: str
    name: str  # the declared name for managed ones, KSeF's certificateName otherwise
    type: str
    status: str
    valid_from: datetime
    valid_to: datetime
    ownership: str  # managed | other-owner | unmanaged
    in_vault: bool | None  # managed: does Vault hold this very certificate; else None
    renewal_due_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "context": self.context,
            "serial_number": self.serial_number,
            "name": self.name,
            "type": self.type,
            "status": self.status,
            "valid_from": _time(self.valid_from),
            "valid_to": _time(self.valid_to),
            "ownership": self.ownership,
            "in_vault": self.in_vault,
            "renewal_due_at": _time(self.renewal_due_at) if self.renewal_due_at else None,
        }


def certificate_rows(
    policy: Policy, context: DesiredContext, seen: ObservedCertificates
) -> list[CertificateRow]:
    declared = {c.name: c for c in context.certificates.items} if context.certificates else {}
    rows = []
    for certificate in sorted(seen.certificates, key=lambda c: (c.valid_from, c.serial_number)):
        marker = certificate.marker
        ours = marker is not None and marker.owner == policy.owner
        name = marker.name if ours and marker else certificate.name
        secret = seen.secrets.get(name) if ours else None
        item = declared.get(name) if ours else None
        rows.append(
            CertificateRow(
                owner=policy.owner,
                context=str(context.context),
                serial_number=certificate.serial_number,
                name=name,
                type=certificate.type,
                status=certificate.status,
                valid_from=certificate.valid_from,
                valid_to=certificate.valid_to,
                ownership="managed" if ours else ("other-owner" if marker else "unmanaged"),
                in_vault=(
                    bool(
                        secret
                        and secret.exists
                        and secret.serial_number == certificate.serial_number
                    )
                    if ours
                    else None
                ),
                renewal_due_at=(
                    renewal_due(certificate, item)
                    if item is not None and certificate.status == "Active"
                    else None
                ),
            )
        )
    return rows


def render_certificates(found: list[tuple[str, list[CertificateRow]]]) -> str:
    headers = (
        "STATUS",
        "NAME",
        "TYPE",
        "SERIAL",
        "VALID FROM",
        "VALID TO",
        "VAULT",
        "RENEW",
        "OWNER",
    )
    lines = ["Certificates"]
    for label, rows in found:
        lines.append(label)
        table = [headers] + [
            (
                r.status,
                r.name,
                r.type,
                r.serial_number,
                _date(r.valid_from),
                _date(r.valid_to),
                "-" if r.in_vault is None else ("yes" if r.in_vault else "no"),
                _date(r.renewal_due_at) if r.renewal_due_at else "-",
                r.ownership,
            )
            for r in rows
        ]
        if len(table) == 1:
            lines.append("  no certificates")
        else:
            widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
            for cells in table:
                lines.append(
                    "  "
                    + "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
                )
        lines.append("")
    return "\n".join(lines) + "\n"


def _date(moment: datetime) -> str:
    return moment.date().isoformat()


def _time(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")

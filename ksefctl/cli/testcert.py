"""``ksefctl testcert``: a self-signed certificate for XAdES login on KSeF TEST.

TEST accepts self-signed certificates, so this is how an owner of a (test)
NIP logs in there without a qualified signature.  DEMO and PROD refuse them.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from ksefctl.errors import KsefctlError, UsageError
from ksefctl.testcert import (
    fingerprint,
    make_personal_certificate,
    make_seal_certificate,
    pesel_problem,
)
from ksefctl.vocabulary import nip_problem


class OutputExists(KsefctlError):
    """The certificate or key file is already there and --force was not given."""


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "testcert",
        help="make a self-signed certificate for XAdES login on KSeF TEST",
        description=__doc__,
    )
    parser.add_argument("--nip", help="the NIP the certificate identifies (10 digits)")
    parser.add_argument(
        "--pesel", help="identify a person by PESEL instead (implies --kind personal)"
    )
    parser.add_argument(
        "--kind",
        choices=("seal", "personal"),
        help="company seal (organizationIdentifier VATPL-…) or personal certificate "
        "(serialNumber TINPL-…/PNOPL-…); default: seal, or personal with --pesel",
    )
    parser.add_argument(
        "--key", choices=("rsa", "ec"), default="rsa", help="key type (default rsa)"
    )
    parser.add_argument("--organization", default="Test Company", help="company name of a seal")
    parser.add_argument("--given-name", default="Jan", help="given name on a personal certificate")
    parser.add_argument("--surname", default="Kowalski", help="surname on a personal certificate")
    parser.add_argument(
        "--out-dir", type=Path, default=Path("."), help="where cert.pem and key.pem go (default .)"
    )
    parser.add_argument("--force", action="store_true", help="overwrite existing cert.pem/key.pem")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # A certificate for an identifier KSeF can never know would only fail at login, later.
    if args.nip is not None and (problem := nip_problem(args.nip)):
        raise UsageError(f"--nip {args.nip!r}: {problem}")
    if args.pesel is not None and (problem := pesel_problem(args.pesel)):
        raise UsageError(f"--pesel {args.pesel!r}: {problem}")
    kind = args.kind or ("personal" if args.pesel else "seal")
    if kind == "seal":
        if args.pesel:
            raise UsageError("--pesel needs --kind personal (a company seal carries a NIP)")
        if not args.nip:
            raise UsageError("a company seal needs --nip")
        certificate, key = make_seal_certificate(
            args.nip, organization=args.organization, key_type=args.key
        )
    else:
        if not (args.nip or args.pesel):
            raise UsageError("a personal certificate needs --nip or --pesel")
        if args.nip and args.pesel:
            raise UsageError("a personal certificate carries one identifier: --nip or --pesel")
        certificate, key = make_personal_certificate(
            nip=args.nip,
            pesel=args.pesel,
            given_name=args.given_name,
            surname=args.surname,
            key_type=args.key,
        )
    out_dir: Path = args.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = out_dir / "cert.pem", out_dir / "key.pem"
    if not args.force:
        for path in (cert_path, key_path):
            if path.exists():
                raise OutputExists(f"{path} already exists (use --force to overwrite)")
    _write(key_path, key, mode=0o600)
    _write(cert_path, certificate, mode=0o644)
    print(f"certificate: {cert_path}")
    print(f"private key: {key_path} (mode 0600)")
    print(f"fingerprint: {fingerprint(certificate)}")
    return 0


def _write(path: Path, data: bytes, *, mode: int) -> None:
    # Created with its final mode, so the key is never readable by others even briefly.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "wb") as file:
        os.fchmod(file.fileno(), mode)  # an existing file keeps its old mode otherwise
        file.write(data)

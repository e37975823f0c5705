"""The simulator's state: in-memory indexes for O(1) lookups, written through to SQLite.

Every change is committed before the response that reveals it is sent, so a
simulator killed at any instant and restarted on the same ``--state`` file
still knows every token it ever handed out.  Only hashes of token secrets are
stored.  Without a state file everything lives in memory.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Any

from ksefctl.sim.grants import PERSON, SYSTEM, Grant, GrantBook, new_grant_id
from ksefctl.sim.keys import USAGES, KsefKey, ephemeral_keys, generate_key
from ksefctl.sim.model import (
    AuthOperation,
    Context,
    Enrollment,
    Identity,
    KsefCertificate,
    Token,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (kind, key)
)
"""


class Persistence:
    """A tiny kind/key/JSON table; ``None`` path keeps nothing."""

    def __init__(self, path: str | None) -> None:
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        if path:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL survives a killed process (not a power cut) at a fraction of FULL's cost.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)

    def load(self, kind: str) -> Iterator[tuple[str, Any]]:
        if self._db is None:
            return
        for key, data in self._db.execute("SELECT key, data FROM records WHERE kind = ?", (kind,)):
            yield key, json.loads(data)

    def put(self, kind: str, key: str, data: Any) -> None:
        if self._db is None:
            return
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO records (kind, key, data) VALUES (?, ?, ?)",
                (kind, key, json.dumps(data, separators=(",", ":"))),
            )

    def delete(self, kind: str, key: str) -> None:
        if self._db is None:
            return
        with self._lock:
            self._db.execute("DELETE FROM records WHERE kind = ? AND key = ?", (kind, key))

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def context_key(context: Context) -> str:
    return f"{context[0]}:{context[1]}"


def _split(key: str) -> tuple[str, str]:
    kind, _, value = key.partition(":")
    return kind, value


class Store:
    def __init__(self, path: str | None) -> None:
        self.db = Persistence(path)
        self.tokens: dict[str, Token] = {}
        self.tokens_by_context: dict[Context, list[Token]] = {}
        self.auths: dict[str, AuthOperation] = {}
        self.auths_by_context: dict[Context, list[AuthOperation]] = {}
        self.grants = GrantBook(self.db)
        self.person_nip: dict[str, str] = {}  # PESEL -> NIP it is linked to
        # NIP -> the /testdata/person record made for it ({pesel, isBailiff, isDeceased}).
        self.persons: dict[str, dict[str, Any]] = {}
        self.blocked_contexts: set[Context] = set()  # /testdata/context/block: logins end 480
        self.subjects: dict[str, dict[str, Any]] = {}
        self.rate_overrides: dict[Context, dict[str, tuple[int, int, int]]] = {}
        self.enrollments: dict[str, Enrollment] = {}
        self.enrollments_by_subject: dict[Identity, list[Enrollment]] = {}
        self.certificates: dict[str, KsefCertificate] = {}  # by serial number
        self.certificates_by_subject: dict[Identity, list[KsefCertificate]] = {}
        self.certificates_by_fingerprint: dict[str, KsefCertificate] = {}
        # Subject ("Nip:…") -> {"enrollment": n, "certificate": n} set through /testdata/limits.
        self.subject_limits: dict[str, dict[str, int]] = {}
        self.ca_pem: dict[str, str] | None = None  # the certificate authority's key and certificate
        self.seq = 0
        self.jwt_key = ""
        self.keys: tuple[KsefKey, ...] = ()
        self._load(path)

    def _load(self, path: str | None) -> None:
        meta = dict(self.db.load("meta"))
        if path is None:
            self.keys = ephemeral_keys()
            self.jwt_key = secrets.token_hex(32)
        else:
            if "keys" in meta:
                self.keys = tuple(KsefKey.from_pem(item) for item in meta["keys"])
            else:
                self.keys = tuple(generate_key(usage) for usage in USAGES)
                self.db.put("meta", "keys", [key.to_pem() for key in self.keys])
            # Persisted so refresh tokens issued before a restart stay valid after it.
            self.jwt_key = meta.get("jwt_key") or secrets.token_hex(32)
            self.db.put("meta", "jwt_key", self.jwt_key)
        for _, data in self.db.load("token"):
            self._index_token(Token.from_json(data))
        for lst in self.tokens_by_context.values():
            lst.sort(key=lambda token: token.seq)
        self.seq = max((token.seq for token in self.tokens.values()), default=0)
        for _, data in self.db.load("auth"):
            self._index_auth(AuthOperation.from_json(data))
        for lst2 in self.auths_by_context.values():
            lst2.sort(key=lambda auth: auth.started)
        self.grants.load()
        # State files from before grant records kept one permission set per identity.
        for key, permissions in list(self.db.load("grant")):
            context_part, _, identity_part = key.partition("|")
            self.grant(_split(context_part), _split(identity_part), set(permissions), 0.0)
            self.db.delete("grant", key)
        for pesel, nip in self.db.load("person"):
            self.person_nip[pesel] = nip
        for nip, person in self.db.load("person_record"):
            self.persons[nip] = person
        for key, _ in self.db.load("blocked"):
            self.blocked_contexts.add(_split(key))
        for nip, subject in self.db.load("subject"):
            self.subjects[nip] = subject
        for key, limits in self.db.load("rate"):
            self.rate_overrides[_split(key)] = {g: tuple(v) for g, v in limits.items()}
        self.ca_pem = meta.get("ca")
        for _, data in self.db.load("enrollment"):
            self._index_enrollment(Enrollment.from_json(data))
        for _, data in self.db.load("certificate"):
            self._index_certificate(KsefCertificate.from_json(data))
        for key, limits in self.db.load("subject_limits"):
            self.subject_limits[key] = limits

    # tokens
    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def add_token(self, token: Token) -> None:
        self._index_token(token)
        self.save_token(token)

    def _index_token(self, token: Token) -> None:
        self.tokens[token.reference_number] = token
        self.tokens_by_context.setdefault(token.context, []).append(token)

    def save_token(self, token: Token) -> None:
        self.db.put("token", token.reference_number, token.to_json())

    def settle(self, token: Token, now: float) -> Token:
        if token.settle(now):
            self.save_token(token)
        return token

    # authentication operations
    def add_auth(self, auth: AuthOperation) -> None:
        self._index_auth(auth)
        self.save_auth(auth)

    def _index_auth(self, auth: AuthOperation) -> None:
        self.auths[auth.reference_number] = auth
        self.auths_by_context.setdefault(auth.context, []).append(auth)

    def save_auth(self, auth: AuthOperation) -> None:
        self.db.put("auth", auth.reference_number, auth.to_json())

    # test data
    def grant(
        self,
        context: Context,
        identity: Identity,
        permissions: set[str],
        now: float | None = None,
        descriptions: dict[str, str] | None = None,
    ) -> None:
        """Person grants made by the TEST seeding endpoint (author ``System``), effective at once."""
        now = time.time() if now is None else now
        for permission in sorted(permissions):
            description = (descriptions or {}).get(permission) or f"Dane testowe: {permission}"
            self.grants.add(
                Grant(
                    new_grant_id(), PERSON, context, identity, permission, description, SYSTEM, now
                )
            )

    def revoke_grants(self, context: Context, identity: Identity) -> None:
        for grant in self.grants.in_context(context):
            if grant.subject == identity and grant.kind == PERSON:
                self.grants.remove(grant.id)

    def link_person(self, pesel: str, nip: str) -> None:
        self.person_nip[pesel] = nip
        self.db.put("person", pesel, nip)

    def unlink_nip(self, nip: str) -> None:
        for pesel in [p for p, n in self.person_nip.items() if n == nip]:
            del self.person_nip[pesel]
            self.db.delete("person", pesel)

    def put_person(self, nip: str, person: dict[str, Any] | None) -> None:
        if person is None:
            self.persons.pop(nip, None)
            self.db.delete("person_record", nip)
        else:
            self.persons[nip] = person
            self.db.put("person_record", nip, person)

    def block_context(self, context: Context, blocked: bool) -> None:
        if blocked:
            self.blocked_contexts.add(context)
            self.db.put("blocked", context_key(context), True)
        else:
            self.blocked_contexts.discard(context)
            self.db.delete("blocked", context_key(context))

    def put_subject(self, nip: str, subject: dict[str, Any]) -> None:
        self.subjects[nip] = subject
        self.db.put("subject", nip, subject)

    def remove_subject(self, nip: str) -> None:
        self.subjects.pop(nip, None)
        self.db.delete("subject", nip)

    def set_rate_override(
        self, context: Context, limits: dict[str, tuple[int, int, int]] | None
    ) -> None:
        if limits is None:
            self.rate_overrides.pop(context, None)
            self.db.delete("rate", context_key(context))
        else:
            self.rate_overrides[context] = limits
            self.db.put("rate", context_key(context), {g: list(v) for g, v in limits.items()})

    # KSeF certificates
    def set_ca(self, pem: dict[str, str]) -> None:
        self.ca_pem = pem
        self.db.put("meta", "ca", pem)

    def add_enrollment(self, enrollment: Enrollment) -> None:
        self._index_enrollment(enrollment)
        self.save_enrollment(enrollment)

    def _index_enrollment(self, enrollment: Enrollment) -> None:
        self.enrollments[enrollment.reference_number] = enrollment
        self.enrollments_by_subject.setdefault(enrollment.subject, []).append(enrollment)

    def save_enrollment(self, enrollment: Enrollment) -> None:
        self.db.put("enrollment", enrollment.reference_number, enrollment.to_json())

    def add_certificate(self, certificate: KsefCertificate) -> None:
        self._index_certificate(certificate)
        self.save_certificate(certificate)

    def _index_certificate(self, certificate: KsefCertificate) -> None:
        self.certificates[certificate.serial] = certificate
        self.certificates_by_subject.setdefault(certificate.subject, []).append(certificate)
        self.certificates_by_fingerprint[certificate.fingerprint] = certificate

    def save_certificate(self, certificate: KsefCertificate) -> None:
        self.db.put("certificate", certificate.serial, certificate.to_json())

    def set_subject_limits(self, subject: str, limits: dict[str, int] | None) -> None:
        if limits is None:
            self.subject_limits.pop(subject, None)
            self.db.delete("subject_limits", subject)
        else:
            self.subject_limits[subject] = limits
            self.db.put("subject_limits", subject, limits)

    def close(self) -> None:
        self.db.close()

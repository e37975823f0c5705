"""What the KSeF API returns, as typed immutable records, and their strict parsers.

Every field read from a response goes through :class:`Fields`, so a missing
field or a wrong type becomes :class:`UnexpectedResponse` naming the field,
never a ``KeyError`` deep inside the caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ksefctl.ksef.errors import UnexpectedResponse
from ksefctl.secret import Secret


def parse_datetime(value: str) -> datetime:
    """An aware datetime from KSeF's ISO 8601 (``Z`` or offset, any fraction).

    KSeF sometimes omits the offset (legacy error timestamps); those are UTC.
    """
    text = value.strip()
    # fromisoformat truncates KSeF's 7 fractional digits to microseconds: plenty.
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an ISO 8601 date-time: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class Fields:
    """Typed, located access to one JSON object of a response."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, Mapping):
            raise UnexpectedResponse(f"KSeF answered {where} with {_kind(data)}, not an object")
        self._data: Mapping[str, Any] = data
        self.where = where

    def _get(self, key: str, required: bool) -> Any:
        value = self._data.get(key)
        if value is None and required:
            raise UnexpectedResponse(f"KSeF answer to {self.where} lacks '{key}'")
        return value

    def _wrong(self, key: str, expected: str, value: Any) -> UnexpectedResponse:
        return UnexpectedResponse(
            f"KSeF answer to {self.where}: '{key}' is {_kind(value)}, expected {expected}"
        )

    def text(self, key: str) -> str:
        value = self._get(key, True)
        if not isinstance(value, str):
            raise self._wrong(key, "a string", value)
        return value

    def opt_text(self, key: str) -> str | None:
        value = self._get(key, False)
        if value is not None and not isinstance(value, str):
            raise self._wrong(key, "a string", value)
        return value

    def integer(self, key: str) -> int:
        value = self._get(key, True)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._wrong(key, "an integer", value)
        return value

    def obj(self, key: str) -> Fields:
        return Fields(self._get(key, True), f"{self.where}.{key}")

    def opt_obj(self, key: str) -> Fields | None:
        value = self._get(key, False)
        return None if value is None else Fields(value, f"{self.where}.{key}")

    def array(self, key: str, *, required: bool = True) -> list[Any]:
        value = self._get(key, required)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self._wrong(key, "a list", value)
        return value

    def texts(self, key: str, *, required: bool = True) -> list[str]:
        items = self.array(key, required=required)
        if not all(isinstance(i, str) for i in items):
            raise self._wrong(key, "a list of strings", items)
        return items

    def moment(self, key: str) -> datetime:
        return self._parse_dt(key, self.text(key))

    def opt_moment(self, key: str) -> datetime | None:
        value = self.opt_text(key)
        return None if value is None else self._parse_dt(key, value)

    def _parse_dt(self, key: str, value: str) -> datetime:
        try:
            return parse_datetime(value)
        except ValueError:
            raise self._wrong(key, "an ISO 8601 date-time", value) from None

    def secret(self, key: str) -> Secret:
        value = self._get(key, True)
        if not isinstance(value, str) or not value:
            # Never format the value: it is (or should have been) a secret.
            raise UnexpectedResponse(f"KSeF answer to {self.where}: '{key}' is not a string")
        return Secret(value)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


@dataclass(frozen=True)
class TokenInfo:
    """One KSeF token's metadata, as ``GET /tokens`` lists it (never its secret)."""

    reference_number: str
    author_type: str  # Nip | Pesel | Fingerprint
    author_value: str
    context_type: str  # Nip | InternalId
    context_value: str
    description: str
    permissions: frozenset[str]
    created: datetime
    last_used: datetime | None
    status: str  # Pending | Active | Revoking | Revoked | Failed
    status_details: tuple[str, ...] = ()

    @classmethod
    def parse(cls, data: Any, where: str) -> TokenInfo:
        f = Fields(data, where)
        author = f.obj("authorIdentifier")
        context = f.obj("contextIdentifier")
        return cls(
            reference_number=f.text("referenceNumber"),
            author_type=author.text("type"),
            author_value=author.text("value"),
            context_type=context.text("type"),
            context_value=context.text("value"),
            description=f.text("description"),
            permissions=frozenset(f.texts("requestedPermissions")),
            created=f.moment("dateCreated"),
            last_used=f.opt_moment("lastUseDate"),
            status=f.text("status"),
            status_details=tuple(f.texts("statusDetails", required=False)),
        )


@dataclass(frozen=True)
class GeneratedToken:
    """A token just created: the only moment its secret is known."""

    reference_number: str
    token: Secret


@dataclass(frozen=True)
class AuthStatus:
    """The state of one authentication operation (``GET /auth/{ref}``)."""

    code: int
    description: str
    details: tuple[str, ...]

    @classmethod
    def parse(cls, data: Any, where: str) -> AuthStatus:
        status = Fields(data, where).obj("status")
        return cls(
            code=status.integer("code"),
            description=status.text("description"),
            details=tuple(status.texts("details", required=False)),
        )

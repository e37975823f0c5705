"""What KV v2 answers, as values: a version read, the path's metadata, a write's outcome.

Plain records the rest of ``vault/`` builds on; none of them prints the data
it carries (a token, a refresh token, login material).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class KvVersion:
    """The version at a path as one data read reports it."""

    # None when deleted, destroyed or never written.  Left out of the repr: it holds the token.
    data: Mapping[str, Any] | None = field(repr=False)
    number: int  # 0 when never written
    custom_metadata: Mapping[str, str]
    deleted: bool  # deleted or destroyed (its metadata still answers)

    @property
    def live(self) -> bool:
        return self.data is not None and not self.deleted

    @classmethod
    def of_answer(cls, answer: Mapping[str, Any]) -> KvVersion:
        """The answer to a successful data read."""
        metadata = answer["data"]["metadata"]
        return cls(
            answer["data"]["data"] or {},
            int(metadata["version"]),
            metadata.get("custom_metadata") or {},
            deleted=bool(metadata.get("deletion_time")) or bool(metadata.get("destroyed")),
        )

    @classmethod
    def of_missing(cls, body: object) -> KvVersion:
        """A 404: never written, or a deleted version (whose metadata still comes back)."""
        metadata = ((body if isinstance(body, dict) else {}).get("data") or {}).get("metadata")
        if not isinstance(metadata, dict):
            return cls(None, 0, {}, deleted=False)
        return cls(
            None,
            int(metadata.get("version") or 0),
            metadata.get("custom_metadata") or {},
            deleted=True,
        )


@dataclass(frozen=True)
class KvMetadata:
    """A path's metadata: its current version, each version's state and ``custom_metadata``."""

    current_version: int
    custom_metadata: Mapping[str, str]
    versions: Mapping[str, Mapping[str, Any]]  # "3" → {"deletion_time": …, "destroyed": …}

    @property
    def current_deleted(self) -> bool:
        """Whether the current version is deleted or destroyed."""
        state = self.versions.get(str(self.current_version)) or {}
        return bool(state.get("deletion_time")) or bool(state.get("destroyed"))

    @property
    def current_live(self) -> bool:
        """Whether a current version is listed and is neither deleted nor destroyed."""
        listed = bool(self.current_version) and str(self.current_version) in self.versions
        return listed and not self.current_deleted

    @classmethod
    def of_answer(cls, answer: Mapping[str, Any]) -> KvMetadata:
        data = answer["data"]
        return cls(
            int(data.get("current_version") or 0),
            {str(k): str(v) for k, v in (data.get("custom_metadata") or {}).items()},
            data.get("versions") or {},
        )


@dataclass(frozen=True)
class KvWritten:
    """A data write's outcome: the new version and the path's ``custom_metadata`` as it was."""

    version: int
    custom_metadata: Mapping[str, str]


def rfc3339(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("timestamps written to Vault must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_time(value: object) -> datetime | None:
    """Parse an RFC 3339 timestamp from Vault (nanoseconds included), None if absent/invalid."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

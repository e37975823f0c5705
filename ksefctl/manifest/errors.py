"""Manifest errors: every problem found, each located in its file."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ksefctl.errors import KsefctlError
from ksefctl.manifest.model import Location


@dataclass(frozen=True)
class ManifestIssue:
    """One problem in a manifest, rendered ``file:line:column: field: message``."""

    location: Location
    field: str
    message: str

    def __str__(self) -> str:
        field = f"{self.field}: " if self.field else ""
        return f"{self.location}: {field}{self.message}"


class ManifestErrors(KsefctlError):
    """The manifests are invalid; ``issues`` lists every problem, not just the first."""

    def __init__(self, issues: Sequence[ManifestIssue]) -> None:
        self.issues: tuple[ManifestIssue, ...] = tuple(issues)
        super().__init__(self._summary())

    def _summary(self) -> str:
        if not self.issues:
            return "invalid manifest"
        first = str(self.issues[0])
        more = len(self.issues) - 1
        return first if not more else f"{first} (and {more} more; run `ksefctl validate`)"

    def render(self) -> str:
        """Every issue on its own line, as ``ksefctl validate`` prints them."""
        return "\n".join(str(issue) for issue in self.issues)

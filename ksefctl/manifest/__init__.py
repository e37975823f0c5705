"""Manifests: YAML in, the typed desired state out (see ``load_manifests``).

The loader is imported lazily so that code needing only the data types in
``ksefctl.manifest.model`` does not pay for YAML and JSON Schema.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ksefctl.manifest.errors import ManifestErrors, ManifestIssue
    from ksefctl.manifest.load import load_manifests, parse_manifests

__all__ = ["ManifestErrors", "ManifestIssue", "load_manifests", "parse_manifests"]


def __getattr__(name: str) -> Any:
    if name in ("ManifestErrors", "ManifestIssue"):
        from ksefctl.manifest import errors

        return getattr(errors, name)
    if name in ("load_manifests", "parse_manifests"):
        from ksefctl.manifest import load

        return getattr(load, name)
    raise AttributeError(name)

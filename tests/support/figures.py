"""Figures a run reports (faults injected, kill points, bad inputs tried …).

Tests add to them with :func:`record`; the session hooks in tests/conftest.py
write them once the run ends to a JSON file outside the source tree (the
pytest cache directory, or a fresh temporary directory under
``-p no:cacheprovider``) and print them in the terminal summary.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

FIGURES: dict[str, dict[str, Any]] = {}


def record(section: str, **values: Any) -> None:
    """Merge ``values`` into one section of this run's figures."""
    FIGURES.setdefault(section, {}).update(values)


def count(section: str, name: str, kind: str, n: int = 1) -> None:
    """Add ``n`` to the counter ``name[kind]`` of ``section`` (with a ``<name>_total``)."""
    values = FIGURES.setdefault(section, {})
    counter: Counter[str] = Counter(values.get(name, {}))
    counter[kind] += n
    values[name] = dict(sorted(counter.items()))
    values[f"{name}_total"] = sum(counter.values())


def write(config: pytest.Config) -> Path | None:
    """Write this run's figures as JSON; the file's path, or None when there are none."""
    if not FIGURES:
        return None
    cache = getattr(config, "cache", None)
    if cache is not None:
        directory = Path(cache.mkdir("ksefctl-figures"))
    else:
        directory = Path(tempfile.mkdtemp(prefix="ksefctl-figures-"))
    path = directory / "last-figures.json"
    path.write_text(json.dumps(FIGURES, indent=2, sort_keys=True) + "\n")
    return path

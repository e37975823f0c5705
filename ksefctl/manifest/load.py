"""``load_manifests``: from files, directories or stdin to the desired state."""

from __future__ import annotations

from collections.abc import Sequence
from typing import BinaryIO

from ksefctl.manifest.errors import ManifestErrors, ManifestIssue
from ksefctl.manifest.expand import Expander
from ksefctl.manifest.model import Desired, Location
from ksefctl.manifest.schema import schema_issues
from ksefctl.manifest.sources import Source, read_sources
from ksefctl.manifest.yaml_safe import parse


def load_manifests(sources: Sequence[str], stdin: BinaryIO | None = None) -> Desired:
    """Read, validate and expand manifests; raises ManifestErrors listing every problem.

    ``sources`` are files, directories (their ``*.yaml`` / ``*.yml``, sorted)
    or ``-`` for stdin.  Nothing outside the files is contacted.
    """
    files, issues = read_sources(sources, stdin)
    return parse_manifests(files, issues)


def parse_manifests(files: Sequence[Source], issues: Sequence[ManifestIssue] = ()) -> Desired:
    """Validate and expand already-read manifest files (see :func:`load_manifests`)."""
    found = list(issues)
    expander = Expander()
    documents = 0
    for source in files:
        parsed, parse_issues = parse(source)
        found.extend(parse_issues)
        for document in parsed:
            documents += 1
            invalid = schema_issues(document)
            found.extend(invalid)
            # Semantic checks rely on the shape the schema guarantees.
            if not invalid and not parse_issues:
                expander.add(document)
    found.extend(expander.finish())
    if not documents and not found:
        where = files[0].name if files else "<none>"
        found.append(ManifestIssue(Location(where, 1, 1), "", "no TokenPolicy documents found"))
    if found:
        raise ManifestErrors(_ordered(found, [f.name for f in files]))
    return expander.desired()


def _ordered(issues: Sequence[ManifestIssue], names: Sequence[str]) -> list[ManifestIssue]:
    """File by file in the order given, then by line and column."""
    order = {name: index for index, name in enumerate(names)}
    unique = dict.fromkeys(issues)  # the schema may report one problem twice
    return sorted(
        unique,
        key=lambda i: (order.get(i.location.file, -1), i.location.line, i.location.column),
    )

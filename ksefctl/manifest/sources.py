"""Reading manifest sources: files, directories and stdin, within safe limits."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ksefctl.manifest.errors import ManifestIssue
from ksefctl.manifest.model import Location

MAX_FILE_BYTES = 10 * 1024 * 1024
STDIN = "-"
STDIN_NAME = "<stdin>"
SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Source:
    """The raw bytes of one manifest file, named as the user will see it."""

    name: str
    data: bytes


def read_sources(
    sources: Sequence[str], stdin: BinaryIO | None = None
) -> tuple[list[Source], list[ManifestIssue]]:
    """Read every file named by ``sources``; directories give their ``*.yaml``/``*.yml``.

    A file named twice (directly and through its directory, say) is read once,
    so it cannot collide with itself.
    """
    found: list[Source] = []
    issues: list[ManifestIssue] = []
    seen: set[str] = set()
    for source in sources:
        if source == STDIN:
            if STDIN in seen:
                continue
            seen.add(STDIN)
            stream = stdin if stdin is not None else sys.stdin.buffer
            _read_stream(STDIN_NAME, stream, found, issues)
            continue
        path = Path(source)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix in SUFFIXES and p.is_file())
            if not files:
                issues.append(_file_issue(source, "directory holds no *.yaml or *.yml files"))
            paths = files
        else:
            paths = [path]
        for file in paths:
            key = os.path.realpath(file)
            if key in seen:
                continue
            seen.add(key)
            try:
                with file.open("rb") as stream:
                    _read_stream(str(file), stream, found, issues)
            except FileNotFoundError:
                issues.append(_file_issue(str(file), "no such file or directory"))
            except IsADirectoryError:
                issues.append(_file_issue(str(file), "is a directory"))
            except OSError as error:
                issues.append(_file_issue(str(file), f"cannot read: {error.strerror or error}"))
    return found, issues


def _read_stream(
    name: str, stream: BinaryIO, found: list[Source], issues: list[ManifestIssue]
) -> None:
    # Reading one byte past the cap tells "exactly at the limit" from "too big"
    # without ever holding more than the cap in memory.
    data = stream.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        issues.append(
            _file_issue(name, f"file is larger than {MAX_FILE_BYTES // 1024 // 1024} MiB")
        )
        return
    found.append(Source(name, data))


def _file_issue(name: str, message: str) -> ManifestIssue:
    return ManifestIssue(Location(name, 1, 1), "", message)

"""YAML to plain data, refusing what a manifest never needs.

Events come from libyaml (fast, and it never builds a node graph), and the
composer here builds only JSON-like values (dict, list, str, int, float, bool,
None) while recording the line and column of every key and value.  Anchors
and aliases are refused outright: a manifest never needs them and they are
how "billion laughs" documents explode.  Duplicate keys, custom tags and
deep nesting are refused too, each with its location.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from ksefctl.manifest.errors import ManifestIssue
from ksefctl.manifest.model import Location
from ksefctl.manifest.sources import Source

MAX_DEPTH = 32
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,62}")

Path = tuple[str | int, ...]

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR = "tag:yaml.org,2002:str"
# Only JSON-like scalars; an unquoted date or ``!!binary`` stays the text it is.
_CONSTRUCTED = {
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
}
_ALLOWED_EXPLICIT = {
    _STR,
    *_CONSTRUCTED,
    "tag:yaml.org,2002:map",
    "tag:yaml.org,2002:seq",
    "!",
}


def render_path(path: Path) -> str:
    """``("spec", "contexts", 1, "nip")`` → ``spec.contexts[1].nip``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part):
            out += f".{part}" if out else part
        else:  # keep odd keys on one readable line
            quoted = json.dumps(part[:40] + ("…" if len(part) > 40 else ""))
            out += f"[{quoted}]"
    return out


@dataclass
class Document:
    """One YAML document as plain data, with the location of every value and key."""

    file: str
    index: int  # 0-based position in the file
    data: Any
    values: dict[Path, Location] = field(default_factory=dict, repr=False)
    keys: dict[Path, Location] = field(default_factory=dict, repr=False)

    def at(self, path: Path) -> Location:
        """Where the value at ``path`` (or its nearest written ancestor) is."""
        for end in range(len(path), -1, -1):
            location = self.values.get(path[:end])
            if location is not None:
                return location
        return Location(self.file, 1, 1)

    def key_at(self, path: Path) -> Location:
        """Where the key naming ``path`` is (the value's location for list items)."""
        return self.keys.get(path) or self.at(path)


class _Skip(Exception):
    """The rest of the file cannot be read (a YAML syntax error was recorded)."""


def parse(source: Source) -> tuple[list[Document], list[ManifestIssue]]:
    """Split a file into documents; empty documents are dropped."""
    issues: list[ManifestIssue] = []
    text = _decode(source, issues)
    if text is None:
        return [], issues
    composer = _Composer(source.name, text, issues)
    return list(composer.documents()), issues


def _decode(source: Source, issues: list[ManifestIssue]) -> str | None:
    data = source.data
    nul = data.find(b"\0")
    if nul >= 0:
        issues.append(_byte_issue(source.name, data, nul, "NUL byte; a manifest is UTF-8 text"))
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        issues.append(_byte_issue(source.name, data, error.start, "not valid UTF-8"))
        return None


def _byte_issue(name: str, data: bytes, offset: int, message: str) -> ManifestIssue:
    line = data.count(b"\n", 0, offset) + 1
    column = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    return ManifestIssue(Location(name, line, column), "", message)


def _line_column(text: str, position: int) -> tuple[int, int]:
    line = text.count("\n", 0, position) + 1
    return line, position - (text.rfind("\n", 0, position) + 1) + 1


class _Composer:
    def __init__(self, name: str, text: str, issues: list[ManifestIssue]) -> None:
        self.name = name
        self.text = text
        self.issues = issues
        self.loader = _Loader(text)
        self.document: Document | None = None

    def documents(self) -> Iterator[Document]:
        try:
            self._expect(yaml.StreamStartEvent)
            index = 0
            while not self.loader.check_event(yaml.StreamEndEvent):
                self._expect(yaml.DocumentStartEvent)
                document = Document(self.name, index, None)
                self.document = document
                document.data = self._node((), 0)
                self._expect(yaml.DocumentEndEvent)
                if document.data is not None:
                    yield document
                index += 1
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark or error.context_mark
            problem = error.problem or error.context or "invalid YAML"
            self._issue(mark, f"invalid YAML: {problem}")
        except yaml.reader.ReaderError as error:
            line, column = _line_column(self.text, error.position)
            self.issues.append(
                ManifestIssue(
                    Location(self.name, line, column),
                    "",
                    f"invalid YAML: control character U+{error.character:04X} is not allowed",
                )
            )
        except yaml.YAMLError as error:  # pragma: no cover - every libyaml error carries a mark
            message = str(error).splitlines()[0]
            self.issues.append(
                ManifestIssue(Location(self.name, 1, 1), "", f"invalid YAML: {message}")
            )
        except _Skip:
            pass
        finally:
            self.loader.dispose()

    def _expect(self, kind: type[yaml.Event]) -> yaml.Event:
        event: yaml.Event = self.loader.get_event()
        if not isinstance(event, kind):  # pragma: no cover - libyaml guarantees the grammar
            self._issue(event.start_mark, "unexpected YAML structure")
            raise _Skip
        return event

    def _location(self, mark: Any) -> Location:
        if mark is None:
            return Location(self.name, 1, 1)
        return Location(self.name, mark.line + 1, mark.column + 1)

    def _issue(self, mark: Any, message: str, field: str = "") -> None:
        self.issues.append(ManifestIssue(self._location(mark), field, message))

    def _node(self, path: Path, depth: int) -> Any:
        assert self.document is not None
        event = self.loader.get_event()
        self.document.values[path] = self._location(event.start_mark)
        if isinstance(event, yaml.AliasEvent):
            self._issue(
                event.start_mark, "YAML aliases (*name) are not supported", render_path(path)
            )
            return None
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            self._issue(
                event.start_mark, "YAML anchors (&name) are not supported", render_path(path)
            )
        tag = getattr(event, "tag", None)
        if tag is not None and tag not in _ALLOWED_EXPLICIT:
            self._issue(
                event.start_mark,
                f"YAML tag {tag.replace('tag:yaml.org,2002:', '!!')} is not supported",
                render_path(path),
            )
            tag = None
        if isinstance(event, yaml.ScalarEvent):
            return self._scalar(event, tag, path)
        if depth >= MAX_DEPTH:
            self._issue(
                event.start_mark, f"nested deeper than {MAX_DEPTH} levels", render_path(path)
            )
            self._skip_collection()
            return None
        if isinstance(event, yaml.SequenceStartEvent):
            items: list[Any] = []
            while not self.loader.check_event(yaml.SequenceEndEvent):
                items.append(self._node((*path, len(items)), depth + 1))
            self.loader.get_event()
            return items
        if isinstance(event, yaml.MappingStartEvent):
            return self._mapping(path, depth)
        self._issue(
            event.start_mark, "unexpected YAML structure", render_path(path)
        )  # pragma: no cover
        raise _Skip  # pragma: no cover

    def _mapping(self, path: Path, depth: int) -> dict[str, Any]:
        assert self.document is not None
        mapping: dict[str, Any] = {}
        while not self.loader.check_event(yaml.MappingEndEvent):
            key_event = self.loader.peek_event()
            if not isinstance(key_event, yaml.ScalarEvent) or key_event.anchor is not None:
                # A complex or anchored key: read it for its issues, then drop the entry.
                self._node((*path, "?"), depth + 1)
                self._issue(
                    key_event.start_mark, "mapping keys must be plain strings", render_path(path)
                )
                self._node((*path, "?"), depth + 1)
                continue
            self.loader.get_event()
            key = key_event.value
            child = (*path, key)
            if key in mapping:
                self._issue(key_event.start_mark, "duplicate key", render_path(child))
                self._node((*path, "?"), depth + 1)  # read and drop the second value
                continue
            self.document.keys[child] = self._location(key_event.start_mark)
            mapping[key] = self._node(child, depth + 1)
        self.loader.get_event()
        return mapping

    def _scalar(self, event: yaml.ScalarEvent, tag: str | None, path: Path) -> Any:
        if tag is None or tag == "!":
            tag = self.loader.resolve(yaml.ScalarNode, event.value, event.implicit)
        if tag not in _CONSTRUCTED:
            return event.value
        node = yaml.ScalarNode(tag, event.value)
        try:
            return self.loader.construct_object(node, deep=True)
        except (ValueError, yaml.YAMLError):
            self._issue(
                event.start_mark,
                f"cannot read {event.value[:20]!r} as {tag.rsplit(':', 1)[-1]}",
                render_path(path),
            )
            return event.value

    def _skip_collection(self) -> None:
        nesting = 1
        while nesting:
            event = self.loader.get_event()
            if isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
                nesting += 1
            elif isinstance(event, yaml.SequenceEndEvent | yaml.MappingEndEvent):
                nesting -= 1

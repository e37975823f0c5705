"""Vault path templates: placeholders, and paths that cannot leave their mount."""

from __future__ import annotations

import string

TOKEN_PLACEHOLDERS = frozenset({"environment", "nip", "context", "token", "owner"})
AUTH_PLACEHOLDERS = frozenset({"environment", "nip", "context", "owner"})


def template_problems(template: str, allowed: frozenset[str]) -> list[str]:
    """Everything wrong with ``template``; placeholders render only slugs and digits,
    so checking the literal text is enough to keep every rendered path inside
    its mount."""
    problems: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        return [f"not a valid template: {error} (write placeholders as {{nip}})"]
    skeleton = ""
    for literal, field, spec, conversion in parsed:
        skeleton += literal
        if field is None:
            continue
        if field not in allowed:
            known = ", ".join("{" + name + "}" for name in sorted(allowed))
            problems.append(f"unknown placeholder {{{field}}}; known: {known}")
        elif spec or conversion:
            problems.append(f"placeholder {{{field}}} takes no format or conversion")
        skeleton += "x"  # a placeholder always renders a non-empty, slash-free value
    if skeleton.startswith("/"):
        problems.append("must be relative to the mount (no leading '/')")
    segments = skeleton.lstrip("/").split("/")
    if any(segment == "" for segment in segments):
        problems.append("has an empty path segment ('//' or a trailing '/')")
    if any(segment in (".", "..") for segment in segments):
        problems.append("must not contain '.' or '..' segments")
    if any(ch in skeleton for ch in "\\?#%") or any(
        ord(ch) < 0x20 or ch == "\x7f" for ch in skeleton
    ):
        problems.append("must not contain '\\', '?', '#', '%' or control characters")
    return problems


def placeholders(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}

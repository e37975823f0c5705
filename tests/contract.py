"""Check HTTP traffic against the official KSeF contract (../shared/ksef/open-api.json).

Every request a test sends and every response the simulator returns can be
validated: the operation exists, the status code is documented for it, the
content type is one it declares, the JSON body matches the schema, query
parameters match their schemas and documented response headers (Retry-After,
x-continuation-token …) are well formed.

Usage with httpx::

    checker = ContractChecker.load()          # pytest.skip()s when ../shared is absent
    client = httpx.AsyncClient(event_hooks=checker.async_hooks())
    ...
    checker.assert_clean()                    # raises with every violation seen

Endpoints outside ``/v2`` (the simulator's admin API) are not checked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from jsonschema import FormatChecker
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

OPENAPI = Path(__file__).resolve().parent.parent.parent / "shared" / "ksef" / "open-api.json"
BASE_PATH = "/v2"
_SPEC_URI = "urn:ksef:open-api"


@dataclass(frozen=True)
class _Operation:
    path: str
    method: str
    spec: Mapping[str, Any]
    pointer: str  # JSON pointer of the operation inside the spec


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


@dataclass
class ContractChecker:
    spec: Mapping[str, Any]
    violations: list[str] = field(default_factory=list)
    checked: int = 0

    @classmethod
    def load(cls, path: Path = OPENAPI) -> ContractChecker:
        if not path.exists():
            pytest.skip(f"KSeF contract not found at {path} (../shared is absent)")
        return cls(spec=_load_spec(str(path)))

    # -- matching ---------------------------------------------------------------
    def _operation(self, method: str, url_path: str) -> _Operation | None:
        if not url_path.startswith(BASE_PATH):
            return None
        path = url_path[len(BASE_PATH) :] or "/"
        for template, regex in _path_patterns(id(self.spec), self.spec):
            if regex.fullmatch(path):
                op = self.spec["paths"][template].get(method.lower())
                if op is None:
                    continue
                return _Operation(
                    template, method.lower(), op, f"/paths/{_escape(template)}/{method.lower()}"
                )
        self.violations.append(f"{method} {url_path}: no such operation in open-api.json")
        return None

    def _validate(self, pointer: str, instance: Any, what: str) -> None:
        validator = _validator(id(self.spec), self.spec, pointer)
        for error in validator.iter_errors(instance):
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            self.violations.append(f"{what}: {where}: {error.message[:300]}")

    # -- public checks ----------------------------------------------------------
    def check_request(
        self,
        method: str,
        url: str,
        body: bytes | None,
        content_type: str | None,
    ) -> None:
        parts = urlsplit(url)
        op = self._operation(method, parts.path)
        if op is None:
            return
        self.checked += 1
        what = f"request {method} {parts.path}"
        query = parse_qs(parts.query, keep_blank_values=True)
        for index, param in enumerate(op.spec.get("parameters", [])):
            if param.get("in") != "query":
                continue
            name = param["name"]
            if name not in query:
                if param.get("required"):
                    self.violations.append(f"{what}: missing required query parameter {name}")
                continue
            values: Any = query[name]
            schema = param.get("schema", {})
            if schema.get("type") != "array":
                values = values[-1]
            values = _coerce(schema, values, self.spec)
            self._validate(f"{op.pointer}/parameters/{index}/schema", values, f"{what} ?{name}")
        declared = op.spec.get("requestBody", {}).get("content", {})
        if not declared:
            return
        media = (content_type or "").split(";")[0].strip()
        if media not in declared:
            self.violations.append(f"{what}: content type {media!r} not in {sorted(declared)}")
            return
        if media.endswith("json"):
            try:
                instance = json.loads(body or b"")
            except ValueError:
                self.violations.append(f"{what}: body is not JSON")
                return
            pointer = f"{op.pointer}/requestBody/content/{_escape(media)}/schema"
            self._validate(pointer, instance, what)

    def check_response(
        self,
        method: str,
        url: str,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
    ) -> None:
        parts = urlsplit(url)
        op = self._operation(method, parts.path)
        if op is None:
            return
        self.checked += 1
        what = f"response {method} {parts.path} {status}"
        responses = op.spec.get("responses", {})
        key = str(status) if str(status) in responses else "default"
        if key not in responses:
            self.violations.append(f"{what}: status not documented ({sorted(responses)})")
            return
        response = responses[key]
        lowered = {k.lower(): v for k, v in headers.items()}
        for name, header in response.get("headers", {}).items():
            value = lowered.get(name.lower())
            if value is None:
                if header.get("required"):
                    self.violations.append(f"{what}: missing header {name}")
                continue
            schema_ptr = f"{op.pointer}/responses/{key}/headers/{_escape(name)}/schema"
            schema = _resolve(self.spec, header.get("schema", {}))
            self._validate(schema_ptr, _coerce(schema, value, self.spec), f"{what} header {name}")
        declared = response.get("content", {})
        if not declared:
            if body.strip():
                self.violations.append(f"{what}: body sent where none is documented")
            return
        media = lowered.get("content-type", "").split(";")[0].strip()
        if media not in declared:
            self.violations.append(f"{what}: content type {media!r} not in {sorted(declared)}")
            return
        if media.endswith("json"):
            try:
                instance = json.loads(body)
            except ValueError:
                self.violations.append(f"{what}: body is not JSON")
                return
            pointer = f"{op.pointer}/responses/{key}/content/{_escape(media)}/schema"
            self._validate(pointer, instance, what)

    # -- httpx integration ------------------------------------------------------
    def _on_request(self, request: httpx.Request) -> None:
        self.check_request(
            request.method,
            str(request.url),
            request.content if _has_body(request) else None,
            request.headers.get("content-type"),
        )

    def _on_response(self, response: httpx.Response) -> None:
        self.check_response(
            response.request.method,
            str(response.request.url),
            response.status_code,
            response.headers,
            response.content,
        )

    def async_hooks(self) -> dict[str, list[Callable[[Any], Awaitable[None]]]]:
        async def on_request(request: httpx.Request) -> None:
            self._on_request(request)

        async def on_response(response: httpx.Response) -> None:
            await response.aread()
            self._on_response(response)

        return {"request": [on_request], "response": [on_response]}

    def sync_hooks(self) -> dict[str, list[Callable[[Any], None]]]:
        def on_response(response: httpx.Response) -> None:
            response.read()
            self._on_response(response)

        return {"request": [self._on_request], "response": [on_response]}

    def assert_clean(self) -> None:
        assert not self.violations, "contract violations:\n" + "\n".join(self.violations)


def _has_body(request: httpx.Request) -> bool:
    try:
        return bool(request.content)
    except httpx.RequestNotRead:
        return False


def _resolve(spec: Mapping[str, Any], schema: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in schema:
        node: Any = spec
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        schema = node
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return _resolve(spec, schema["allOf"][0])
    return schema


def _coerce(schema: Mapping[str, Any], value: Any, spec: Mapping[str, Any]) -> Any:
    """Query strings and headers are text; turn them into what their schema types say."""
    schema = _resolve(spec, schema)
    kind = schema.get("type")
    if isinstance(value, list):
        items = schema.get("items", {})
        return [_coerce(items, v, spec) for v in value]
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
        if kind == "boolean":
            return {"true": True, "false": False}.get(str(value).lower(), value)
    except ValueError:
        return value
    return value


@lru_cache(maxsize=4)
def _load_spec(path: str) -> Mapping[str, Any]:
    with open(path, encoding="utf-8") as handle:
        spec: Mapping[str, Any] = json.load(handle)
    return spec


_PATTERNS: dict[int, list[tuple[str, re.Pattern[str]]]] = {}
_REGISTRIES: dict[int, Registry[Any]] = {}


def _path_patterns(key: int, spec: Mapping[str, Any]) -> list[tuple[str, re.Pattern[str]]]:
    if key not in _PATTERNS:
        patterns = []
        # Literal paths first, so /auth/sessions wins over /auth/{referenceNumber}.
        for template in sorted(spec["paths"], key=lambda t: (t.count("{"), t)):
            regex = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
            patterns.append((template, re.compile(regex)))
        _PATTERNS[key] = patterns
    return _PATTERNS[key]


_VALIDATORS: dict[tuple[int, str], OAS30Validator] = {}


def _validator(key: int, spec: Mapping[str, Any], pointer: str) -> OAS30Validator:
    # Building a validator costs tens of milliseconds; every test reuses them.
    validator = _VALIDATORS.get((key, pointer))
    if validator is None:
        validator = OAS30Validator(
            {"$ref": f"{_SPEC_URI}#{pointer}"},
            registry=_registry(key, spec),
            format_checker=FormatChecker(),
        )
        _VALIDATORS[(key, pointer)] = validator
    return validator


def _registry(key: int, spec: Mapping[str, Any]) -> Registry[Any]:
    if key not in _REGISTRIES:
        resource = Resource.from_contents(dict(spec), default_specification=DRAFT4)
        _REGISTRIES[key] = Registry().with_resource(_SPEC_URI, resource)
    return _REGISTRIES[key]

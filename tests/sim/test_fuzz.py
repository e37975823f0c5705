"""The simulator never answers 500 to anything a client can send to the auth and token
endpoints: bodies generated from open-api.json's own request schemas, the same bodies
completed with a live challenge and a real encrypted token so they reach a session, and
arbitrary JSON. Every answer is also checked against the contract.

The schema-to-strategy step is written here: hypothesis-jsonschema (0.23.1, the latest)
fails on current Hypothesis (``'many' object has no attribute 'more'``), and the request
schemas use only objects, strings with lengths/patterns/enums and arrays.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ksefctl.sim.config import SimConfig
from tests.contract import ContractChecker
from tests.simfixture import SimHandle, encrypt, start_sim

FUZZ = settings(
    max_examples=60,
    derandomize=True,  # the same examples every run: a CI failure reproduces locally
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)


def _json_schema(spec: dict[str, Any], schema: Any) -> Any:
    """An OpenAPI 3.0 schema as plain JSON Schema: $refs inlined, ``nullable`` as a null branch."""
    if isinstance(schema, list):
        return [_json_schema(spec, item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        node: Any = spec
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        return _json_schema(spec, node)
    result = {
        key: _json_schema(spec, value)
        for key, value in schema.items()
        if key not in ("nullable", "description", "example", "format", "deprecated")
        and not key.startswith("x-")
    }
    if schema.get("type") == "array" and "maximum" in schema:
        # The contract writes the AllowedIps list limit as "maximum" (meant: maxItems).
        result["maxItems"] = result.pop("maximum")
        result.pop("minimum", None)
    if schema.get("nullable"):
        return {"anyOf": [result, {"type": "null"}]}
    return result


def from_schema(schema: Any) -> st.SearchStrategy[Any]:
    """Values valid under ``schema`` (the subset of JSON Schema the request bodies use)."""
    if "anyOf" in schema:
        return st.one_of([from_schema(option) for option in schema["anyOf"]])
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            merged.update(part)
        merged.update({k: v for k, v in schema.items() if k != "allOf"})
        return from_schema(merged)
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type", "object" if "properties" in schema else None)
    if kind == "null":
        return st.none()
    if kind == "string":
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True)
        return st.text(min_size=schema.get("minLength", 0), max_size=schema.get("maxLength", 60))
    if kind == "array":
        return st.lists(
            from_schema(schema.get("items", {})),
            min_size=schema.get("minItems", 0),
            max_size=schema.get("maxItems", 5),
        )
    if kind == "object":
        properties = schema.get("properties", {})
        required = set(schema.get("required", ()))
        return st.fixed_dictionaries(
            {name: from_schema(sub) for name, sub in properties.items() if name in required},
            optional={
                name: from_schema(sub) for name, sub in properties.items() if name not in required
            },
        )
    return JSON


def _body_schema(spec: dict[str, Any], method: str, path: str) -> Any:
    operation = spec["paths"][path][method]
    return _json_schema(spec, operation["requestBody"]["content"]["application/json"]["schema"])


class Fuzzed:
    """The module's simulator and one keep-alive client whose answers are contract-checked."""

    def __init__(self, sim: SimHandle, api: httpx.Client) -> None:
        self.sim = sim
        self.api = api

    def __repr__(self) -> str:
        return "Fuzzed()"  # Hypothesis prints the arguments of a failing example


@pytest.fixture(scope="module")
def fuzzed() -> Iterator[Fuzzed]:
    checker = ContractChecker.load()
    handle = start_sim(SimConfig(rate_limits_enabled=False), checker)
    try:
        yield Fuzzed(handle, handle.client(invalid_requests=True))
        assert "500" not in handle.stats()["statuses"]
    finally:
        handle.close()
    checker.assert_clean()


def _never_500(response: httpx.Response) -> httpx.Response:
    assert response.status_code < 500, (
        response.request.method,
        response.request.url,
        response.text,
    )
    return response


def _spec() -> dict[str, Any]:
    spec: dict[str, Any] = copy.deepcopy(dict(ContractChecker.load().spec))
    return spec


SPEC = _spec()
KSEF_TOKEN_BODY = from_schema(_body_schema(SPEC, "post", "/auth/ksef-token"))
TOKENS_BODY = from_schema(_body_schema(SPEC, "post", "/tokens"))


@FUZZ
@given(body=KSEF_TOKEN_BODY, complete=st.booleans())
def test_ksef_token_login_never_500(fuzzed: Fuzzed, body: dict[str, Any], complete: bool) -> None:
    api = fuzzed.api
    if complete:
        # A real challenge and token, so the generated policy and context reach a session.
        minted = fuzzed.sim.mint_token()
        chosen = next(
            c
            for c in api.get("/security/public-key-certificates").json()
            if "KsefTokenEncryption" in c["usage"]
        )
        key = x509.load_der_x509_certificate(base64.b64decode(chosen["certificate"])).public_key()
        assert isinstance(key, rsa.RSAPublicKey)
        challenge = api.post("/auth/challenge").json()
        body = dict(
            body,
            challenge=challenge["challenge"],
            encryptedToken=encrypt(key, f"{minted.token}|{challenge['timestampMs']}"),
            publicKeyId=chosen["publicKeyId"],
        )
    started = _never_500(api.post("/auth/ksef-token", json=body))
    if started.status_code != 202:
        return
    auth = {"Authorization": f"Bearer {started.json()['authenticationToken']['token']}"}
    _never_500(api.get(f"/auth/{started.json()['referenceNumber']}", headers=auth))
    redeemed = _never_500(api.post("/auth/token/redeem", headers=auth))
    if redeemed.status_code != 200:
        return
    access = {"Authorization": f"Bearer {redeemed.json()['accessToken']['token']}"}
    refresh = {"Authorization": f"Bearer {redeemed.json()['refreshToken']['token']}"}
    _never_500(api.get("/tokens", headers=access))
    _never_500(api.get("/auth/sessions", headers=access))
    _never_500(api.post("/auth/token/refresh", headers=refresh))
    _never_500(api.delete("/auth/sessions/current", headers=refresh))


@FUZZ
@given(body=KSEF_TOKEN_BODY | JSON)
def test_arbitrary_login_bodies_never_500(fuzzed: Fuzzed, body: Any) -> None:
    api = fuzzed.api
    _never_500(api.post("/auth/ksef-token", json=body))


@FUZZ
@given(document=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_arbitrary_xades_documents_never_500(fuzzed: Fuzzed, document: bytes) -> None:
    api = fuzzed.api
    headers = {"Content-Type": "application/xml"}
    _never_500(api.post("/auth/xades-signature", content=document, headers=headers))


@FUZZ
@given(
    body=TOKENS_BODY | JSON,
    # What an HTTP client can put in a path segment and a header (httpx refuses the rest).
    reference=st.from_regex(r"[A-Za-z0-9\-_.~!$&'()*+,;=:@]{1,40}", fullmatch=True),
    query=st.dictionaries(
        st.sampled_from(
            ["status", "description", "authorIdentifier", "authorIdentifierType", "pageSize"]
        ),
        st.text(max_size=12),
        max_size=4,
    ),
    cursor=st.none()
    | st.text(
        alphabet=st.characters(codec="ascii", min_codepoint=33, max_codepoint=126), max_size=40
    ),
    authorization=st.none()
    | st.text(
        alphabet=st.characters(codec="ascii", min_codepoint=32, max_codepoint=126), max_size=60
    )
    .map(str.strip)
    .filter(bool),
)
def test_token_endpoints_never_500(
    fuzzed: Fuzzed,
    body: Any,
    reference: str,
    query: dict[str, str],
    cursor: str | None,
    authorization: str | None,
) -> None:
    api = fuzzed.api
    owner = fuzzed.sim.owner_session()
    headers = dict(owner.headers)
    if cursor is not None:
        headers["x-continuation-token"] = cursor
    created = _never_500(api.post("/tokens", headers=owner.headers, json=body))
    if created.status_code == 202:
        made = created.json()["referenceNumber"]
        _never_500(api.delete(f"/tokens/{made}", headers=owner.headers))
        _never_500(api.delete(f"/tokens/{made}", headers=owner.headers))
    _never_500(api.get("/tokens", headers=headers, params=query))
    if reference.strip("."):
        _never_500(api.get(f"/tokens/{reference}", headers=owner.headers))
        _never_500(api.delete(f"/tokens/{reference}", headers=owner.headers))
    _never_500(api.get("/rate-limits", headers=owner.headers))
    stranger = {"Authorization": authorization} if authorization is not None else {}
    for method, path in (
        ("GET", "/tokens"),
        ("POST", "/auth/token/refresh"),
        ("DELETE", "/auth/sessions/current"),
    ):
        _never_500(api.request(method, path, headers=stranger))

"""/v2/tokens: generate, list, read and revoke KSeF tokens; /v2/rate-limits."""

from __future__ import annotations

import base64
import bisect
import json
import secrets
from typing import Any

from starlette.responses import Response

from ksefctl.sim.ids import reference_number, secret_hash, token_string
from ksefctl.sim.model import TOKEN_PERMISSIONS, TOKEN_STATUSES, Token
from ksefctl.sim.problems import BadRequest, Forbidden
from ksefctl.sim.service import Simulator
from ksefctl.sim.validation import enum_list, text
from ksefctl.sim.web import Call, api_route, json_response

TOKEN_CONTEXTS = ("Nip", "InternalId")
AUTHOR_TYPES = ("Nip", "Pesel", "Fingerprint")


def page_size(call: Call) -> int:
    raw = call.request.query_params.get("pageSize", "10")
    try:
        size = int(raw)
    except ValueError:
        size = 0
    if not 10 <= size <= 100:
        raise BadRequest(21405, "Parametr 'pageSize' musi być liczbą z zakresu 10..100.")
    return size


def encode_cursor(position: float) -> str:
    return base64.b64encode(json.dumps({"before": position}).encode()).decode()


def decode_cursor(call: Call) -> float | None:
    raw = call.request.headers.get("x-continuation-token")
    if not raw:
        return None
    try:
        position = json.loads(base64.b64decode(raw, validate=True))["before"]
        if not isinstance(position, int | float):
            raise TypeError
    except (ValueError, TypeError, KeyError):
        raise BadRequest(21418) from None
    return float(position)


def create_token(
    sim: Simulator,
    context: tuple[str, str],
    author: tuple[str, str],
    permissions: list[str],
    description: str,
    settled: bool = False,
) -> tuple[Token, str]:
    """Store a new token and return it with its one-time secret string."""
    now = sim.now()
    faults = sim.faults
    outcome = (
        "Failed"
        if faults.failed_activation_rate and sim.rng.random() < faults.failed_activation_rate
        else "Active"
    )
    reference = reference_number("EC", now)
    secret = secrets.token_hex(32)
    token = Token(
        reference_number=reference,
        seq=sim.store.next_seq(),
        context=context,
        author=author,
        description=description,
        permissions=permissions,
        created=now,
        secret_hash=secret_hash(secret),
        status="Active" if settled else "Pending",
        due=None if settled else now + faults.activation_delay_s,
        outcome=None if settled else outcome,
    )
    sim.store.add_token(token)
    sim.stats.tokens_created += 1
    return token, token_string(reference, context[0], context[1], secret)


async def generate(call: Call) -> Response:
    sim, auth = call.sim, call.session
    body = await call.json()
    permissions = enum_list(body, "permissions", TOKEN_PERMISSIONS)
    description = text(body, "description", 5, 256)
    if auth.context[0] not in TOKEN_CONTEXTS:
        raise BadRequest(
            26002,
            f"Bieżący typ kontekstu: {auth.context[0]}. Dozwolone typy kontekstu: {', '.join(TOKEN_CONTEXTS)}.",
        )
    held = sim.session_permissions(auth)
    missing = [p for p in permissions if p not in held]
    if missing:
        raise BadRequest(26001, f"Brakujące uprawnienia: {', '.join(missing)}.")
    assert auth.identity is not None
    token, value = create_token(sim, auth.context, auth.identity, permissions, description)
    faults = sim.faults
    if faults.drop_after_commit > 0:
        faults.drop_after_commit -= 1
        call.drop_after_commit()
    elif faults.drop_after_commit_rate and sim.rng.random() < faults.drop_after_commit_rate:
        call.drop_after_commit()
    return json_response({"referenceNumber": token.reference_number, "token": value}, status=202)


async def query(call: Call) -> Response:
    sim, auth = call.sim, call.session
    params = call.request.query_params
    statuses = set(params.getlist("status"))
    if statuses - set(TOKEN_STATUSES):
        raise BadRequest(
            21405, f"Nieznany status tokena: {', '.join(sorted(statuses - set(TOKEN_STATUSES)))}."
        )
    description = _filter(params.get("description"), "description")
    author = _filter(params.get("authorIdentifier"), "authorIdentifier")
    author_type = params.get("authorIdentifierType")
    if author_type is not None and author_type not in AUTHOR_TYPES:
        raise BadRequest(21405, "Nieznana wartość parametru 'authorIdentifierType'.")
    size = page_size(call)
    before = decode_cursor(call)
    tokens = sim.store.tokens_by_context.get(auth.context, [])
    end = len(tokens) if before is None else bisect.bisect_left(tokens, before, key=lambda t: t.seq)
    permissions = sim.session_permissions(auth)
    now = sim.now()
    page: list[Token] = []
    more = False
    for index in range(end - 1, -1, -1):
        token = tokens[index]
        if not sim.can_see(auth, token, permissions):
            continue
        sim.store.settle(token, now)
        if statuses and token.status not in statuses:
            continue
        if description and description not in token.description.lower():
            continue
        if author and author not in token.author[1].lower():
            continue
        if author_type and token.author[0] != author_type:
            continue
        if len(page) == size:
            more = True
            break
        page.append(token)
    body: dict[str, Any] = {"tokens": [token.describe() for token in page]}
    if more:
        body["continuationToken"] = encode_cursor(page[-1].seq)
    return json_response(body)


def _filter(value: str | None, name: str) -> str | None:
    if value is None:
        return None
    if len(value) < 3:
        raise BadRequest(21405, f"Parametr '{name}' musi mieć co najmniej 3 znaki.")
    return value.lower()


def _visible_token(call: Call) -> Token:
    sim, auth = call.sim, call.session
    reference = call.request.path_params["referenceNumber"]
    token = sim.store.tokens.get(reference)
    if token is None or token.context != auth.context:
        raise BadRequest(21405, f"Token o numerze referencyjnym {reference} nie został znaleziony.")
    if not sim.can_see(auth, token, sim.session_permissions(auth)):
        raise Forbidden("insufficient-resource-access")
    return sim.store.settle(token, sim.now())


async def read(call: Call) -> Response:
    return json_response(_visible_token(call).describe())


async def revoke(call: Call) -> Response:
    sim, auth = call.sim, call.session
    token = _visible_token(call)
    permissions = sim.session_permissions(auth)
    if "CredentialsManage" not in permissions and not sim.is_own_token(auth, token):
        raise Forbidden(
            "missing-permissions",
            {
                "requiredAnyOfPermissions": ["CredentialsManage"],
                "presentPermissions": sorted(permissions),
            },
        )
    # The contract lets a caller revoke "any active token"; one that is already Revoked, or
    # Failed (never active), is refused. Revoking repeats harmlessly: the first call is under way.
    if token.status in ("Revoked", "Failed"):
        raise BadRequest(
            21405,
            f"Token {token.reference_number} ma status {token.status} i nie może zostać unieważniony.",
        )
    if token.status in ("Pending", "Active"):
        token.status = "Revoking"
        token.due = sim.now() + sim.faults.revocation_delay_s
        token.outcome = "Revoked"
        sim.store.save_token(token)
    return Response(status_code=204)


async def rate_limits(call: Call) -> Response:
    return json_response(call.sim.effective_limits(call.session.context))


def routes(sim: Simulator) -> list[Any]:
    return [
        api_route(sim, "POST", "/tokens", generate, group="other", credential="access"),
        api_route(sim, "GET", "/tokens", query, group="other", credential="access"),
        api_route(
            sim, "GET", "/tokens/{referenceNumber}", read, group="other", credential="access"
        ),
        api_route(
            sim, "DELETE", "/tokens/{referenceNumber}", revoke, group="other", credential="access"
        ),
        api_route(sim, "GET", "/rate-limits", rate_limits, group="other", credential="access"),
    ]

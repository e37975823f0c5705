"""/v2/security and /v2/auth: public keys, challenges, logins, redeem, refresh, sessions."""

from __future__ import annotations

import base64
import binascii
import hmac
import importlib
from datetime import UTC, datetime
from typing import Any

from starlette.responses import Response

from ksefctl.sim import routes_certificates
from ksefctl.sim.ids import iso, reference_number, secret_hash
from ksefctl.sim.keys import TOKEN_ENCRYPTION, DecryptionError, accepted_key
from ksefctl.sim.model import AuthOperation, Context, Identity
from ksefctl.sim.problems import BadRequest, Forbidden, Gone
from ksefctl.sim.service import Simulator
from ksefctl.sim.validation import authorization_policy, identifier, public_key_id
from ksefctl.sim.web import Call, api_route, json_response

LOGIN_CONTEXTS = ("Nip", "InternalId", "NipVatUe", "PeppolId")
CHALLENGE_LENGTH = 36
SUCCESS = (200, "Uwierzytelnianie zakończone sukcesem")
FAILED = "Uwierzytelnianie zakończone niepowodzeniem"
BAD_TOKEN = "Uwierzytelnianie zakończone niepowodzeniem z powodu błędnego tokenu"
BAD_CERTIFICATE = "Uwierzytelnianie zakończone niepowodzeniem z powodu błędu certyfikatu"
DECEASED = (470, FAILED)
DECEASED_DETAIL = "Próba wykorzystania metod autoryzacyjnych osoby zmarłej"
BLOCKED = (480, "Uwierzytelnienie zablokowane")
BLOCKED_DETAIL = (
    "Podejrzenie incydentu bezpieczeństwa. "
    "Skontaktuj się z Ministerstwem Finansów przez formularz zgłoszeniowy."
)

TOKEN_METHOD = {"category": "Token", "code": "token.ksef", "displayName": "Token KSeF"}
XADES_METHODS = {
    "Nip": (
        "QualifiedSeal",
        {
            "category": "XadesSignature",
            "code": "xades.qualified-seal",
            "displayName": "Pieczęć kwalifikowana",
        },
    ),
    "Pesel": (
        "QualifiedSignature",
        {
            "category": "XadesSignature",
            "code": "xades.qualified-signature",
            "displayName": "Podpis kwalifikowany",
        },
    ),
    "Fingerprint": (
        "QualifiedSignature",
        {
            "category": "XadesSignature",
            "code": "xades.qualified-signature",
            "displayName": "Podpis kwalifikowany",
        },
    ),
}


async def public_keys(call: Call) -> Response:
    return json_response([key.describe() for key in call.sim.store.keys])


async def challenge(call: Call) -> Response:
    value, now, timestamp_ms = call.sim.new_challenge()
    return json_response(
        {
            "challenge": value,
            "timestamp": iso(now),
            "timestampMs": timestamp_ms,
            "clientIp": call.client_ip,
        }
    )


def _start(
    sim: Simulator,
    context: Context,
    identity: Identity | None,
    method: str,
    info: dict[str, str],
    outcome: tuple[int, str],
    details: list[str] | None = None,
    **extra: Any,
) -> Response:
    now = sim.now()
    auth = AuthOperation(
        reference_number=reference_number("AU", now),
        context=context,
        identity=identity,
        method=method,
        method_info=info,
        started=now,
        ready_at=now + sim.faults.auth_delay_s,
        code=outcome[0],
        description=outcome[1],
        details=details or [],
        **extra,
    )
    sim.store.add_auth(auth)
    token, valid_until = sim.issue(
        "authentication", auth.reference_number, sim.config.authentication_token_ttl_s
    )
    body = {
        "referenceNumber": auth.reference_number,
        "authenticationToken": {"token": token, "validUntil": iso(valid_until)},
    }
    return json_response(body, status=202)


def _permission_outcome(
    sim: Simulator, identity: Identity, context: Context
) -> tuple[tuple[int, str], list[str]]:
    blocked = _blocked_or_deceased(sim, identity, context)
    if blocked is not None:
        return blocked
    if sim.identity_permissions(identity, context):
        return SUCCESS, []
    return (415, FAILED), ["Brak przypisanych uprawnień"]


def _blocked_or_deceased(
    sim: Simulator, identity: Identity | None, context: Context
) -> tuple[tuple[int, str], list[str]] | None:
    """The TEST scenarios' refusals: a context blocked by /testdata/context/block (480), a person
    made with isDeceased (470); both end the login after a 202, as KSeF's status codes say."""
    if context in sim.store.blocked_contexts:
        return BLOCKED, [BLOCKED_DETAIL]
    if sim.is_deceased(identity):
        return DECEASED, [DECEASED_DETAIL]
    return None


async def ksef_token(call: Call) -> Response:
    sim = call.sim
    body = await call.json()
    context = identifier(body.get("contextIdentifier"), "contextIdentifier", LOGIN_CONTEXTS)
    encrypted = body.get("encryptedToken")
    if not isinstance(encrypted, str) or not isinstance(body.get("challenge"), str):
        raise BadRequest(21405, "Pola 'challenge' i 'encryptedToken' są wymagane.")
    if len(body["challenge"]) != CHALLENGE_LENGTH:
        raise BadRequest(21405, f"Pole 'challenge' musi mieć {CHALLENGE_LENGTH} znaków.")
    try:
        ciphertext = base64.b64decode(encrypted, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(21405, "Pole 'encryptedToken' nie jest poprawnym Base64.") from None
    # Input validation (21405) comes before any lookup, as in KSeF: a malformed key id or
    # IP policy never reaches the key list, the challenge or a session.
    key_id = public_key_id(body.get("publicKeyId"))
    policy = authorization_policy(body.get("authorizationPolicy"))
    # Unknown, retired (no longer listed) or outside its validity: 21470, as KSeF says.
    key = accepted_key(sim.store.keys, TOKEN_ENCRYPTION, key_id, sim.now())
    if key is None:
        raise BadRequest(21470, f"Klucz o identyfikatorze {key_id} nie jest wspierany.")
    found = sim.take_challenge(body["challenge"])
    if found is None:
        raise BadRequest(21111)

    def refuse(identity: Identity | None, detail: str) -> Response:
        return _start(sim, context, identity, "Token", TOKEN_METHOD, (450, BAD_TOKEN), [detail])

    try:
        plain = key.decrypt(ciphertext).decode("utf-8")
    except (DecryptionError, UnicodeDecodeError):
        return refuse(None, "Nieprawidłowy token")
    token_text, _, timestamp = plain.rpartition("|")
    if timestamp != str(found.timestamp_ms):
        return refuse(None, "Nieprawidłowy czas tokena")
    reference, _, rest = token_text.partition("|")
    secret = rest.rpartition("|")[2]
    token = sim.store.tokens.get(reference)
    if token is None or token.context != context or not _secret_matches(token.secret_hash, secret):
        return refuse(None, "Nieprawidłowy token")
    sim.store.settle(token, sim.now())
    if token.status in ("Revoking", "Revoked"):
        return refuse(token.author, "Token unieważniony")
    if token.status != "Active":
        return refuse(token.author, "Token nieaktywny")
    refused = _blocked_or_deceased(sim, token.author, context)
    if refused is not None:
        return _start(sim, context, token.author, "Token", TOKEN_METHOD, *refused)
    token.last_use = sim.now()
    sim.store.save_token(token)
    return _start(
        sim,
        context,
        token.author,
        "Token",
        TOKEN_METHOD,
        SUCCESS,
        token_reference=token.reference_number,
        token_permissions=list(token.permissions),
        allowed_ips=policy,
    )


def _secret_matches(stored_hash: str, secret: str) -> bool:
    return hmac.compare_digest(stored_hash, secret_hash(secret))


async def xades_signature(call: Call) -> Response:
    sim = call.sim
    document = await call.request.body()
    try:
        xades: Any = importlib.import_module("ksefctl.sim.xades_verification")
    except ImportError:
        raise BadRequest(
            21405, "Weryfikacja podpisu XAdES jest niedostępna w tym symulatorze."
        ) from None
    try:
        # Certificate validity is judged by the simulator's clock, which tests move forward.
        verified = xades.verify_auth_request(document, now=_moment(sim.now()))
    except xades.XadesError as error:
        # A broken document or signature is a 400 with its own code from the documented
        # table (21001, 21401, 9101, 9102, 9103, 9105, 21115); only a certificate KSeF
        # will not trust starts a login that ends 460 with one of the documented details.
        if error.kind != "certificate":
            default = 9105 if error.kind == "signature" else 9101
            raise BadRequest(error.code or default, str(error)) from None
        return _start(
            sim,
            ("", ""),
            None,
            "QualifiedSeal",
            XADES_METHODS["Nip"][1],
            (460, BAD_CERTIFICATE),
            [error.status_detail or "Niepoprawny certyfikat"],
        )
    try:
        context = identifier(
            {"type": verified.context_type, "value": verified.context_value},
            "ContextIdentifier",
            LOGIN_CONTEXTS,
        )
    except BadRequest:
        raise BadRequest(21117) from None
    if sim.take_challenge(verified.challenge) is None:
        raise BadRequest(21111)
    identity = (verified.identity_type, verified.identity_value)
    method, info = XADES_METHODS.get(verified.identity_type, XADES_METHODS["Fingerprint"])
    # A KSeF certificate issued here logs in as the subject it was issued to, if it may.
    issued = routes_certificates.login_certificate(sim, verified.certificate)
    if issued is not None:
        identity, method = issued.identity, "InternalCertificate"
        info = routes_certificates.INTERNAL_CERTIFICATE_METHOD
        if issued.refusal is not None:
            refusal = (460, BAD_CERTIFICATE)
            return _start(sim, context, identity, method, info, refusal, [issued.refusal])
    outcome, details = _permission_outcome(sim, identity, context)
    policy = verified.authorization_policy
    return _start(
        sim,
        context,
        identity,
        method,
        info,
        outcome,
        details,
        allowed_ips=policy,
        enrollment_data=routes_certificates.enrollment_data_of(verified.certificate),
    )


def _moment(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)


def _own_operation(call: Call) -> AuthOperation:
    reference = call.request.path_params["referenceNumber"]
    auth = call.sim.store.auths.get(reference)
    if auth is None:
        raise BadRequest(
            21304,
            f"Operacja uwierzytelniania o numerze referencyjnym {reference} nie została znaleziona.",
        )
    if auth is not call.session:
        raise Forbidden("insufficient-resource-access")
    if call.sim.now() > auth.started + call.sim.config.auth_operation_ttl_s:
        raise Gone()
    return auth


async def operation_status(call: Call) -> Response:
    auth = _own_operation(call)
    return json_response(_describe(auth, call.sim.now()))


def _describe(auth: AuthOperation, now: float) -> dict[str, Any]:
    return {
        "startDate": iso(auth.started),
        "authenticationMethod": auth.method,
        "authenticationMethodInfo": dict(auth.method_info),
        "status": auth.status(now),
    }


def _token_revoked(sim: Simulator, auth: AuthOperation) -> bool:
    if auth.token_reference is None:
        return False
    token = sim.store.tokens.get(auth.token_reference)
    return token is None or sim.store.settle(token, sim.now()).status in ("Revoking", "Revoked")


async def redeem(call: Call) -> Response:
    sim, auth = call.sim, call.session
    now = sim.now()
    status = auth.status(now)
    if sim.is_deceased(auth.identity):
        raise BadRequest(21308)
    if auth.redeemed:
        raise BadRequest(
            21301,
            f"Tokeny dla operacji uwierzytelniania {auth.reference_number} zostały już pobrane.",
        )
    if status["code"] != 200:
        raise BadRequest(
            21301, f"Status uwierzytelniania ({status['code']}) nie pozwala na pobranie tokenów."
        )
    if _token_revoked(sim, auth):
        raise BadRequest(21301, "Token KSeF został unieważniony.")
    access, access_until = sim.issue("access", auth.reference_number, sim.config.access_token_ttl_s)
    refresh, refresh_until = sim.issue(
        "refresh", auth.reference_number, sim.config.refresh_token_ttl_s
    )
    auth.redeemed = True
    auth.refresh_valid_until = refresh_until
    sim.store.save_auth(auth)
    return json_response(
        {
            "accessToken": {"token": access, "validUntil": iso(access_until)},
            "refreshToken": {"token": refresh, "validUntil": iso(refresh_until)},
        }
    )


async def refresh(call: Call) -> Response:
    sim, auth = call.sim, call.session
    now = sim.now()
    if sim.is_deceased(auth.identity):
        raise BadRequest(21308)
    if not auth.is_active_session(now):
        code = auth.status(now)["code"]
        raise BadRequest(
            21301,
            f"Status uwierzytelniania ({code}) nie pozwala na odświeżenie tokenu dostępowego.",
        )
    if _token_revoked(sim, auth):
        raise BadRequest(21301, "Token KSeF został unieważniony.")
    access, access_until = sim.issue("access", auth.reference_number, sim.config.access_token_ttl_s)
    auth.last_refresh = now
    sim.store.save_auth(auth)
    return json_response({"accessToken": {"token": access, "validUntil": iso(access_until)}})


async def list_sessions(call: Call) -> Response:
    from ksefctl.sim.routes_tokens import decode_cursor, encode_cursor, page_size

    sim, current = call.sim, call.session
    now = sim.now()
    size = page_size(call)
    before = decode_cursor(call)
    sessions = [
        auth
        for auth in reversed(sim.store.auths_by_context.get(current.context, []))
        if auth.is_active_session(now)
    ]
    start = 0
    if before is not None:
        start = next((i for i, auth in enumerate(sessions) if auth.started < before), len(sessions))
    page = sessions[start : start + size]
    items = []
    for auth in page:
        item = _describe(auth, now)
        item.update(
            referenceNumber=auth.reference_number,
            isCurrent=auth is current,
            isTokenRedeemed=auth.redeemed,
            refreshTokenValidUntil=iso(auth.refresh_valid_until or now),
        )
        if auth.last_refresh is not None:
            item["lastTokenRefreshDate"] = iso(auth.last_refresh)
        items.append(item)
    body: dict[str, Any] = {"items": items}
    if start + size < len(sessions):
        body["continuationToken"] = encode_cursor(page[-1].started)
    return json_response(body)


async def end_current_session(call: Call) -> Response:
    call.session.revoked = True
    call.sim.store.save_auth(call.session)
    return Response(status_code=204)


async def end_session(call: Call) -> Response:
    reference = call.request.path_params["referenceNumber"]
    auth = call.sim.store.auths.get(reference)
    if auth is None or auth.context != call.session.context:
        raise BadRequest(21405, f"Sesja uwierzytelnienia {reference} nie została znaleziona.")
    auth.revoked = True
    call.sim.store.save_auth(auth)
    return Response(status_code=204)


def routes(sim: Simulator) -> list[Any]:
    return [
        api_route(
            sim,
            "GET",
            "/security/public-key-certificates",
            public_keys,
            group="auth",
            credential=None,
        ),
        api_route(sim, "POST", "/auth/challenge", challenge, group="auth", credential=None),
        api_route(sim, "POST", "/auth/ksef-token", ksef_token, group="auth", credential=None),
        api_route(
            sim, "POST", "/auth/xades-signature", xades_signature, group="auth", credential=None
        ),
        api_route(
            sim, "POST", "/auth/token/redeem", redeem, group="auth", credential="authentication"
        ),
        api_route(sim, "POST", "/auth/token/refresh", refresh, group="auth", credential="refresh"),
        api_route(sim, "GET", "/auth/sessions", list_sessions, group="other", credential="access"),
        api_route(
            sim,
            "DELETE",
            "/auth/sessions/current",
            end_current_session,
            group="other",
            # The contract: "Sposób uwierzytelnienia: RefreshToken lub AccessToken".
            credential=("access", "refresh"),
        ),
        api_route(
            sim,
            "DELETE",
            "/auth/sessions/{referenceNumber}",
            end_session,
            group="other",
            credential="access",
        ),
        api_route(
            sim,
            "GET",
            "/auth/{referenceNumber}",
            operation_status,
            group="auth",
            credential="authentication",
        ),
    ]

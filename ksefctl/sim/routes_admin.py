"""/_sim: the simulator's own control panel, outside the KSeF API.

Faults and global limits can be changed while it runs; statistics can be read
and reset; KSeF's public keys can be rotated (``/_sim/public-keys``, the same
steps as ``public_keys`` in ``--config``, see ``keys.py``); and tests can skip
ceremony: mint a KSeF token or open a session for any identity directly, or
move the clock forward.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ksefctl.sim.config import DEFAULT_RATE_LIMITS, ConfigError
from ksefctl.sim.ids import iso, reference_number
from ksefctl.sim.keys import RotationStep, UnknownKey, rotate, valid_at
from ksefctl.sim.model import TOKEN_PERMISSIONS, AuthOperation
from ksefctl.sim.problems import BadRequest
from ksefctl.sim.routes_auth import LOGIN_CONTEXTS, TOKEN_METHOD
from ksefctl.sim.routes_tokens import create_token
from ksefctl.sim.service import Simulator
from ksefctl.sim.validation import enum_list, identifier
from ksefctl.sim.web import json_response


def _error(message: str, status: int = 400) -> Response:
    return json_response({"error": message}, status=status)


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    data = json.loads(raw) if raw else {}
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


def _rotate(sim: Simulator, step: RotationStep) -> dict[str, Any] | None:
    """Apply one rotation step; the description of the key it created, if any."""
    keys, created = rotate(sim.store.keys, step, sim.now())
    sim.store.keys = keys
    # A state file keeps the rotation across restarts, as it keeps the keys themselves.
    sim.store.db.put("meta", "keys", [key.to_pem() for key in keys])
    return created.describe() if created is not None else None


def _listed(sim: Simulator) -> list[dict[str, Any]]:
    now = sim.now()
    return [dict(key.describe(), acceptedNow=valid_at(key, now)) for key in sim.store.keys]


def routes(sim: Simulator) -> list[Route]:
    # --config rotation steps, applied once when the simulator is built.
    for step in sim.config.public_keys:
        _rotate(sim, step)

    async def get_public_keys(request: Request) -> Response:
        return json_response(_listed(sim))

    async def rotate_public_keys(request: Request) -> Response:
        """One step: {"action": "publish"|"recertify"|"retire", "usage"?, "publicKeyId"?,
        "validFrom"?, "validTo"?}; answers the key it created and the keys now listed."""
        try:
            created = _rotate(sim, RotationStep.parse(await _body(request)))
        except UnknownKey as error:
            return _error(str(error), status=404)
        except (ValueError, TypeError) as error:
            return _error(str(error))
        return json_response({"created": created, "keys": _listed(sim)})

    async def health(request: Request) -> Response:
        return json_response({"ok": True})

    async def get_faults(request: Request) -> Response:
        return json_response(sim.faults.to_json())

    async def put_faults(request: Request) -> Response:
        try:
            sim.faults = sim.faults.merged(await _body(request))
        except (ConfigError, ValueError) as error:
            return _error(str(error))
        return json_response(sim.faults.to_json())

    async def get_stats(request: Request) -> Response:
        return json_response(sim.stats.to_json())

    async def reset_stats(request: Request) -> Response:
        sim.stats = type(sim.stats)()
        return Response(status_code=204)

    async def put_limits(request: Request) -> Response:
        """{"enabled": bool, "authPerSecond": n, "limits": {group: [s, m, h]}} — all optional."""
        try:
            body = await _body(request)
            if "enabled" in body:
                sim.config.rate_limits_enabled = bool(body["enabled"])
            if "authPerSecond" in body:
                sim.config.auth_per_second = int(body["authPerSecond"])
            for group, values in (body.get("limits") or {}).items():
                if group not in DEFAULT_RATE_LIMITS:
                    raise ValueError(f"unknown rate-limit group {group!r}")
                per_second, per_minute, per_hour = (int(v) for v in values)
                sim.config.rate_limits[group] = (per_second, per_minute, per_hour)
        except (ValueError, TypeError) as error:
            return _error(str(error))
        return json_response(
            {"enabled": sim.config.rate_limits_enabled, "limits": sim.config.rate_limits}
        )

    async def clock(request: Request) -> Response:
        if request.method == "POST":
            try:
                sim.clock_offset += float((await _body(request))["advanceSeconds"])
            except (ValueError, KeyError, TypeError) as error:
                return _error(f"advanceSeconds needed: {error}")
        return json_response({"now": iso(sim.now()), "offsetSeconds": sim.clock_offset})

    async def mint_token(request: Request) -> Response:
        """Create a token as if the context's owner had generated it; Active at once by default."""
        try:
            body = await _body(request)
            context = identifier(body.get("context"), "context", ("Nip", "InternalId"))
            author = identifier(
                body.get("author") or {"type": "Nip", "value": context[1][:10]},
                "author",
                ("Nip", "Pesel", "Fingerprint"),
            )
            permissions = enum_list(body, "permissions", TOKEN_PERMISSIONS)
            description = str(body.get("description") or "minted by the simulator")
        except BadRequest as error:
            return _error("; ".join(error.details))
        except ValueError as error:
            return _error(str(error))
        token, value = create_token(
            sim, context, author, permissions, description, settled=bool(body.get("active", True))
        )
        return json_response(
            {"referenceNumber": token.reference_number, "token": value}, status=201
        )

    async def open_session(request: Request) -> Response:
        """Access and refresh tokens for any identity in any context, as a successful login gives."""
        try:
            body = await _body(request)
            context = identifier(body.get("context"), "context", LOGIN_CONTEXTS)
            identity = identifier(body.get("identity"), "identity", ("Nip", "Pesel", "Fingerprint"))
        except BadRequest as error:
            return _error("; ".join(error.details))
        except ValueError as error:
            return _error(str(error))
        now = sim.now()
        auth = AuthOperation(
            reference_number=reference_number("AU", now),
            context=context,
            identity=identity,
            method="QualifiedSeal",
            method_info=dict(
                TOKEN_METHOD, category="Other", code="sim.admin", displayName="Simulator"
            ),
            started=now,
            ready_at=now,
            code=200,
            description="Uwierzytelnianie zakończone sukcesem",
            redeemed=True,
        )
        access, access_until = sim.issue(
            "access", auth.reference_number, sim.config.access_token_ttl_s
        )
        refresh, refresh_until = sim.issue(
            "refresh", auth.reference_number, sim.config.refresh_token_ttl_s
        )
        auth.refresh_valid_until = refresh_until
        sim.store.add_auth(auth)
        return json_response(
            {
                "referenceNumber": auth.reference_number,
                "accessToken": {"token": access, "validUntil": iso(access_until)},
                "refreshToken": {"token": refresh, "validUntil": iso(refresh_until)},
                "permissions": sorted(sim.identity_permissions(identity, context)),
            },
            status=201,
        )

    return [
        Route("/_sim/health", health, methods=["GET"]),
        Route("/_sim/public-keys", get_public_keys, methods=["GET"]),
        Route("/_sim/public-keys", rotate_public_keys, methods=["POST"]),
        Route("/_sim/faults", get_faults, methods=["GET"]),
        Route("/_sim/faults", put_faults, methods=["PUT", "PATCH"]),
        Route("/_sim/stats", get_stats, methods=["GET"]),
        Route("/_sim/stats/reset", reset_stats, methods=["POST"]),
        Route("/_sim/rate-limits", put_limits, methods=["PUT"]),
        Route("/_sim/clock", clock, methods=["GET", "POST"]),
        Route("/_sim/tokens", mint_token, methods=["POST"]),
        Route("/_sim/sessions", open_session, methods=["POST"]),
    ]

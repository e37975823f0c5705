"""The simulator as an ASGI application: /v2 API, /_sim admin API, fault layer in front."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from ksefctl.sim import (
    routes_admin,
    routes_auth,
    routes_certificates,
    routes_permissions,
    routes_testdata,
    routes_tokens,
)
from ksefctl.sim.problems import BadRequest
from ksefctl.sim.service import Simulator
from ksefctl.sim.web import FaultLayer


def build_app(sim: Simulator) -> FaultLayer:
    routes = [
        *routes_auth.routes(sim),
        *routes_tokens.routes(sim),
        *routes_permissions.routes(sim),
        *routes_certificates.routes(sim),
        *routes_testdata.routes(sim),
        *routes_admin.routes(sim),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        _, headers, body = BadRequest(21405, f"Nieznany zasób: {request.url.path}").render(
            request.url.path, request.headers.get("x-error-format", "") == "problem-details"
        )
        return Response(body, status_code=404, headers=headers)

    app = Starlette(routes=routes, exception_handlers={404: not_found})
    return FaultLayer(app, sim)

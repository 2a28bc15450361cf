"""The reference server's operations routes: ``/readyz`` and ``/metrics`` (``/healthz``,
liveness, is the JSON API's).

``/metrics`` exists only when an operator asks for it, and is never public by accident:

- ``SATCHEL_METRICS_PORT``: served on that port (its own listener, loopback unless
  ``SATCHEL_METRICS_HOST`` says otherwise), which serves nothing but ``/metrics``,
  ``/healthz`` and ``/readyz``;
- ``SATCHEL_METRICS_TOKEN``: served on the main port too, to ``Authorization: Bearer
  <token>`` only (and then on the metrics port as well).

Without either, ``/metrics`` is a 404 and nothing is counted.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from satchel.integrations.asgi import ASGIApp, Receive, Scope, Send, json_body, send_json_error
from satchel.integrations.fastapi import get_auth, server_settings
from satchel.integrations.fastapi.openapi import error_responses
from satchel.ops.metrics import Metrics
from satchel.ops.readiness import readiness

if TYPE_CHECKING:
    from satchel.auth import Auth
    from satchel.config.settings import Settings

#: Paths the metrics port answers; anything else there is a 404.
METRICS_PORT_PATHS = frozenset({"/metrics", "/healthz", "/readyz"})

router = APIRouter()


@dataclass
class OpsState:
    """What the operations routes need: the counters, the registry, the access rules."""

    metrics: Metrics
    registry: Any  # prometheus_client.CollectorRegistry
    token: bytes | None
    port: int | None


def metrics_enabled(settings: Settings) -> bool:
    """True when ``/metrics`` is configured (a metrics port or a token)."""
    return settings.metrics_port is not None or settings.metrics_token is not None


def install_ops(app: FastAPI, settings: Settings) -> None:
    """Add ``/readyz`` and ``/metrics`` to ``app`` and, with metrics on, their state."""
    app.include_router(router)
    app.state.ops = None
    if not metrics_enabled(settings):
        return
    from satchel.ops.exposition import make_registry  # needs the ``metrics`` extra

    metrics = Metrics()
    token = settings.metrics_token
    app.state.ops = OpsState(
        metrics=metrics,
        registry=make_registry(metrics),
        token=token.get_secret_value().encode("utf-8") if token is not None else None,
        port=settings.metrics_port,
    )


def gate_metrics_port(app: FastAPI, settings: Settings) -> None:
    """With a metrics port, refuse everything but the operations paths there (add this
    middleware last: it runs before any other, authentication included)."""
    if settings.metrics_port is not None:
        app.add_middleware(MetricsPortGate, port=settings.metrics_port)


def attach_ops(app: FastAPI, auth: Auth) -> None:
    """Start counting for ``auth`` (the lifespan calls this once the Auth exists)."""
    ops: OpsState | None = getattr(app.state, "ops", None)
    if ops is not None:
        ops.metrics.attach(auth)


@router.get(
    "/readyz",
    responses=error_responses(503),
    summary="Readiness: every store answers and the revocation channel is connected",
)
async def readyz(request: Request) -> JSONResponse:
    """200 ``{"status": "ready", "checks": ...}``, or 503 ``not_ready`` naming what is down."""
    auth = get_auth(request)
    report = await readiness(auth, server_settings(request).ready_timeout)
    headers = {"Cache-Control": "no-store"}
    if not report.ok:
        headers["Retry-After"] = "1"
    return JSONResponse(report.body(), status_code=200 if report.ok else 503, headers=headers)


def _bearer(request: Request) -> bytes | None:
    value = request.headers.get("authorization", "")
    scheme, _, credential = value.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        return None
    return credential.strip().encode("utf-8", "replace")


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """The Prometheus text exposition (see the module docstring for who may read it)."""
    ops: OpsState | None = getattr(request.app.state, "ops", None)
    server = request.scope.get("server") or (None, None)
    on_metrics_port = ops is not None and ops.port is not None and server[1] == ops.port
    if ops is None or (ops.token is None and not on_metrics_port):
        return _error(404, "not_found", "Not Found")
    if ops.token is not None:
        given = _bearer(request)
        if given is None or not hmac.compare_digest(given, ops.token):
            return _error(
                401,
                "invalid_credential",
                "The metrics token is missing or wrong.",
                {"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
    from satchel.ops.exposition import CONTENT_TYPE_LATEST, render

    return Response(
        render(ops.registry),
        media_type=CONTENT_TYPE_LATEST,
        headers={"Cache-Control": "no-store"},
    )


def _error(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json_body(status, code, detail),
        status_code=status,
        media_type="application/json",
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


class MetricsPortGate:
    """On the metrics port, only the operations paths; everything else there is a 404."""

    def __init__(self, app: ASGIApp, *, port: int) -> None:
        self.app = app
        self.port = port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            server = scope.get("server") or (None, None)
            if server[1] == self.port and scope.get("path") not in METRICS_PORT_PATHS:
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                await send_json_error(send, 404, "not_found", "Not Found")
                return
        await self.app(scope, receive, send)

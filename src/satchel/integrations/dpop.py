"""DPoP on requests (RFC 9449): the request URL a proof must name, and the checks run for
every bearer-transport credential by the ASGI middleware and the WSGI driver.

``htu`` is compared with ``SATCHEL_PUBLIC_URL`` + the request path when that setting is
given (behind a proxy the public address is not what the app sees), else with the request's
own scheme, ``Host`` and path; :func:`satchel.dpop.proof.normalize_htu` normalises both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from satchel.audit import AuditEvent
from satchel.auth import Auth
from satchel.dpop.binding import DPoPSchemeError, cookie_refusal, scheme_refusal
from satchel.identity import Identity
from satchel.transports.base import RawHeaders, header_values
from satchel.transports.bearer import dpop_scheme


async def audited(auth: Auth, identity: Identity, refusal: DPoPSchemeError) -> DPoPSchemeError:
    """``refusal``, once its ``dpop.failure`` audit event is out (the guard audits its own)."""
    await auth.audit.emit(
        AuditEvent(
            "dpop.failure",
            user_id=identity.user_id,
            session=identity.session_id,
            reason=refusal.reason,
        )
    )
    return refusal


def request_url(scope: Mapping[str, Any], public_url: str | None) -> str:
    """The URL of the request in ``scope`` as a proof's ``htu`` names it (no query)."""
    path = scope.get("path") or "/"
    if public_url is not None:
        return public_url.rstrip("/") + path
    scheme = str(scope.get("scheme") or "http")
    scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    hosts = header_values(scope.get("headers") or (), b"host")
    if hosts:
        host = hosts[0].decode("latin-1")
    else:
        server = scope.get("server") or ("localhost", None)
        host = server[0] if server[1] is None else f"{server[0]}:{server[1]}"
    return f"{scheme}://{host}{path}"


def proofs(headers: RawHeaders) -> list[str]:
    """The request's ``DPoP`` header values."""
    return [value.decode("latin-1") for value in header_values(headers, b"dpop")]


def proof_due(auth: Auth, headers: RawHeaders) -> bool:
    """Whether an unbound bearer-transport token needs :func:`check_scope` at all: only when
    it came under the ``DPoP`` scheme or ``SATCHEL_DPOP=required`` refuses bearer tokens
    (the plain bearer request, the common one, skips building its URL)."""
    guard = auth.dpop
    return guard is not None and (guard.mode == "required" or dpop_scheme(headers))


async def check_scope(auth: Auth, identity: Identity, token: str, scope: Mapping[str, Any]) -> None:
    """Accept ``identity``'s bearer-transport ``token`` as presented, or raise.

    A DPoP-bound token needs the ``DPoP`` scheme and a valid proof; under
    ``SATCHEL_DPOP=required`` an unbound bearer token is refused (:mod:`satchel.dpop.binding`).
    """
    method = str(scope.get("method") or "GET")  # a WebSocket handshake is a GET
    headers = scope.get("headers") or ()
    await check_request(auth, identity, token, headers, method, request_url(scope, None))


async def check_request(
    auth: Auth, identity: Identity, token: str, headers: RawHeaders, method: str, url: str
) -> None:
    """:func:`check_scope` for a request given by its headers, method and URL as the app
    sees it (``SATCHEL_PUBLIC_URL``, when set, replaces its scheme and host)."""
    scheme = dpop_scheme(headers)
    guard = auth.dpop
    if guard is None:
        refusal = scheme_refusal(identity.jkt, scheme, "off")
        if refusal is not None:
            raise await audited(auth, identity, refusal)
        return
    if guard.public_url is not None:
        url = guard.public_url.rstrip("/") + (urlsplit(url).path or "/")
    await guard.resource_request(identity, token, scheme, proofs(headers), method, url)


def proofless_refusal(
    auth: Auth, identity: Identity, headers: RawHeaders, transport: str = "bearer"
) -> DPoPSchemeError | None:
    """What refuses a bearer-transport credential whose proof is not checked (a WSGI request
    given without its method and URL): a DPoP-bound token, the ``DPoP`` scheme, or, under
    ``required``, any token."""
    if transport != "bearer":
        return cookie_refusal(identity.jkt)
    scheme = dpop_scheme(headers)
    refusal = scheme_refusal(identity.jkt, scheme, auth.dpop.mode if auth.dpop else "off")
    if refusal is None and scheme:
        refusal = DPoPSchemeError("DPoP proofs are not checked by this integration.", "unsupported")
    return refusal

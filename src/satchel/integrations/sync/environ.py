"""Raw header pairs from a WSGI environ (or Django's ``request.META``).

The transports read lower-case ``(name, value)`` byte pairs, as ASGI carries them. WSGI
servers decode header values as Latin-1 (PEP 3333), so encoding them back is lossless.
Authenticating needs only the two credential headers: :func:`credential_headers` reads just
those (and a DPoP proof), a few dict lookups per request, instead of converting the whole
environ; :func:`proof_request` is the method and URL a DPoP proof is checked against.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from satchel.transports.base import RawHeaders


def _raw(value: str) -> bytes:
    # Anything that is not Latin-1 cannot be one of our credentials: "?" makes it invalid.
    return value.encode("latin-1", "replace")


def credential_headers(environ: Mapping[str, Any]) -> RawHeaders:
    """The ``authorization`` and ``cookie`` headers of a request, as raw pairs."""
    out: list[tuple[bytes, bytes]] = []
    value = environ.get("HTTP_AUTHORIZATION")
    if value is not None:
        out.append((b"authorization", _raw(value)))
    value = environ.get("HTTP_COOKIE")
    if value is not None:
        out.append((b"cookie", _raw(value)))
    value = environ.get("HTTP_DPOP")
    if value is not None:
        out.append((b"dpop", _raw(value)))
    return out


def proof_request(environ: Mapping[str, Any], scheme: str | None = None) -> tuple[str, str] | None:
    """``(method, URL)`` of a request carrying a DPoP proof or scheme, else None.

    The URL is the scheme (``scheme``, else ``wsgi.url_scheme``), ``Host`` and the
    script-and-path, re-escaped: PEP 3333 servers hand the path over decoded.
    """
    authorization = environ.get("HTTP_AUTHORIZATION")
    if "HTTP_DPOP" not in environ and (
        authorization is None or authorization[:5].lower() != "dpop "
    ):
        return None
    scheme = scheme or str(environ.get("wsgi.url_scheme") or "http")
    host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME')}:{environ.get('SERVER_PORT')}"
    path = str(environ.get("SCRIPT_NAME") or "") + str(environ.get("PATH_INFO") or "/")
    escaped = quote(path.encode("latin-1", "replace"), safe="/:@!$&'()*+,;=-._~")
    return str(environ.get("REQUEST_METHOD") or "GET"), f"{scheme}://{host}{escaped}"


def all_headers(environ: Mapping[str, Any]) -> RawHeaders:
    """Every request header of ``environ`` as raw pairs (``HTTP_*``, content type and length)."""
    out: list[tuple[bytes, bytes]] = []
    for key, value in environ.items():
        if not isinstance(value, str):
            continue
        if key.startswith("HTTP_"):
            name = key[5:].replace("_", "-").lower()
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if not value:
                continue  # WSGI servers set them empty when the request has none
            name = key.replace("_", "-").lower()
        else:
            continue
        out.append((name.encode("latin-1"), _raw(value)))
    return out


def content_length(environ: Mapping[str, Any]) -> int | None:
    """The declared ``Content-Length``, or None when absent or malformed."""
    value = environ.get("CONTENT_LENGTH")
    if not value:
        return None
    try:
        length = int(value)
    except ValueError:
        return None
    return length if length >= 0 else None

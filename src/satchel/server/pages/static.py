"""The bundled stylesheet and icon: a fixed table read once, served with a content hash."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Final

from fastapi import APIRouter, Response
from fastapi.responses import RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

STATIC_DIR: Final = Path(__file__).resolve().parent.parent / "static"
_STATIC_TYPES: Final = {
    "style.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
    "passkeys.js": "text/javascript; charset=utf-8",
}

router = APIRouter(include_in_schema=False)


def _load_static() -> dict[str, tuple[bytes, str]]:
    files: dict[str, tuple[bytes, str]] = {}
    for name in _STATIC_TYPES:
        path = STATIC_DIR / name
        if path.is_file():
            data = path.read_bytes()
            files[name] = (data, hashlib.sha256(data).hexdigest()[:12])
    return files


_static_files = _load_static()


def static_url(name: str) -> str:
    """URL of a bundled static file, with a content hash so it can be cached for long."""
    entry = _static_files.get(name)
    return f"/static/{name}?v={entry[1]}" if entry else f"/static/{name}"


@router.get("/static/{name}")
async def static(name: str) -> Response:
    """The bundled stylesheet and icon (a fixed list: nothing else can be read)."""
    entry = _static_files.get(name)
    if entry is None:
        raise StarletteHTTPException(404)
    data, _digest = entry
    response = Response(data, media_type=_STATIC_TYPES[name])
    response.headers["Cache-Control"] = "public, max-age=86400"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@router.get("/favicon.ico")
async def favicon() -> Response:
    """Browsers ask here by default; the icon is the SVG."""
    return RedirectResponse(static_url("favicon.svg"), status_code=301)

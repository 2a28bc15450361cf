"""The API documentation page (Swagger UI at ``/docs``) served with its own assets, so it
works offline and behind a firewall.

FastAPI's pages load Swagger UI and ReDoc from a CDN: with no way out to the internet they
stay blank. :func:`offline_docs` serves Swagger UI 5 with the files of the
``fastapi-offline`` package (installed with the ``server`` extra) under ``/docs/assets/``.
ReDoc is left out: even from local files it fetches its logo from its vendor's CDN, so it
would not be offline. Create the app with ``docs_url=None, redoc_url=None`` and call it once.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Final

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

from satchel.errors import ConfigurationError

#: Where the Swagger UI files are served.
ASSETS_PATH: Final = "/docs/assets"


def assets_directory() -> Path:
    """The folder of the packaged Swagger UI files."""
    try:
        folder = Path(str(files("fastapi_offline") / "static"))
    except ModuleNotFoundError:
        raise ConfigurationError(
            "The offline API docs need the fastapi-offline package (pip install 'satchel[server]')."
        ) from None
    if not (folder / "swagger-ui-bundle.js").is_file():
        raise ConfigurationError(f"No Swagger UI files in {folder}.")
    return folder


def offline_docs(app: FastAPI, *, docs_url: str = "/docs", favicon_url: str | None = None) -> None:
    """Serve Swagger UI at ``docs_url`` with local assets only. ``favicon_url`` defaults to
    the packaged icon."""
    if app.docs_url is not None or app.redoc_url is not None:
        raise ConfigurationError("Create the app with docs_url=None, redoc_url=None first.")
    openapi_url = app.openapi_url
    if openapi_url is None:
        raise ConfigurationError("The app has no OpenAPI document to show.")
    app.mount(ASSETS_PATH, StaticFiles(directory=assets_directory()), name="docs-assets")
    redirect_url = app.swagger_ui_oauth2_redirect_url or f"{docs_url}/oauth2-redirect"
    title = app.title

    def urls(request: Request) -> tuple[str, str, str]:
        root = str(request.scope.get("root_path") or "")
        icon = favicon_url or f"{root}{ASSETS_PATH}/favicon.png"
        return root, f"{root}{ASSETS_PATH}", icon

    @app.get(docs_url, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root, assets, icon = urls(request)
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{title} – API",
            swagger_js_url=f"{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=icon,
            oauth2_redirect_url=f"{root}{redirect_url}",
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    @app.get(redirect_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

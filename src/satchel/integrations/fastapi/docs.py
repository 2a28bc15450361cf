"""The API documentation pages (Swagger UI at ``/docs``, ReDoc at ``/redoc``) served with
their own assets, so they work offline and behind a firewall.

FastAPI's pages load Swagger UI and ReDoc from a CDN (and ReDoc's fonts from Google): with
no way out to the internet they stay blank. :func:`offline_docs` serves the same pages
with the assets of the ``fastapi-offline`` package (Swagger UI 5, ReDoc 2), installed with
the ``server`` extra, under ``/docs/assets/``. Create the app with ``docs_url=None,
redoc_url=None`` and call it once.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Final

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

from satchel.errors import ConfigurationError

#: Where the Swagger UI and ReDoc files are served.
ASSETS_PATH: Final = "/docs/assets"


def assets_directory() -> Path:
    """The folder of the packaged Swagger UI and ReDoc files."""
    try:
        folder = Path(str(files("fastapi_offline") / "static"))
    except ModuleNotFoundError:
        raise ConfigurationError(
            "The offline API docs need the fastapi-offline package (pip install 'satchel[server]')."
        ) from None
    if not (folder / "swagger-ui-bundle.js").is_file():
        raise ConfigurationError(f"No Swagger UI files in {folder}.")
    return folder


def offline_docs(
    app: FastAPI,
    *,
    docs_url: str = "/docs",
    redoc_url: str | None = "/redoc",
    favicon_url: str | None = None,
) -> None:
    """Serve Swagger UI at ``docs_url`` and ReDoc at ``redoc_url`` (None: none) with local
    assets only. ``favicon_url`` defaults to the packaged icon."""
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

    if redoc_url is not None:

        @app.get(redoc_url, include_in_schema=False)
        async def redoc(request: Request) -> HTMLResponse:
            root, assets, icon = urls(request)
            return get_redoc_html(
                openapi_url=f"{root}{openapi_url}",
                title=f"{title} – API reference",
                redoc_js_url=f"{assets}/redoc.standalone.js",
                redoc_favicon_url=icon,
                with_google_fonts=False,
            )

"""The old home of the JSON API, kept so that ``from satchel.server.api import router``
still works: the routes are :mod:`satchel.integrations.fastapi.routes` now, where
:func:`~satchel.integrations.fastapi.install` can take them without importing the server.
"""

from __future__ import annotations

from satchel.integrations.fastapi.routes import check_csrf, login_context, router

__all__ = ["check_csrf", "login_context", "router"]

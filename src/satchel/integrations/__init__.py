"""Framework integrations.

:mod:`satchel.integrations.asgi` (no framework needed) provides :class:`AuthMiddleware`;
:mod:`satchel.integrations.fastapi` provides dependencies and error handlers and imports
FastAPI, so it is not imported here.
"""

from satchel.integrations.asgi import AuthMiddleware

__all__ = ["AuthMiddleware"]

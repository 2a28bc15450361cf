"""The reference authentication server (FastAPI + uvicorn).

``create_app(settings)`` gives the ASGI app; ``run(settings)`` serves it. Both need the
``server`` extra.
"""

from satchel.server.app import create_app
from satchel.server.runner import run

__all__ = ["create_app", "run"]

"""A Flask app with satchel: the ``/auth/*`` JSON API, protected views, roles and CSRF.

Every satchel setting comes from the ``SATCHEL_*`` environment (``SATCHEL_STRATEGY``,
``SATCHEL_STORE``...), so this app, a Django project and ``satchel serve`` can share one
store and one revocation channel. Run it under gunicorn (sync or threaded workers)::

    satchel users add alice --role admin --store sqlite:///satchel.db
    SATCHEL_STORE=sqlite:///satchel.db gunicorn -w 2 -k gthread --threads 8 \\
        --chdir examples flask_app:app

then ``curl -X POST localhost:8000/auth/token -d grant_type=password -d username=alice
-d password=...`` and ``curl localhost:8000/hello -H 'Authorization: Bearer <access_token>'``.
"""

from __future__ import annotations

import os

from flask import Flask, request

from satchel import Settings
from satchel.integrations.flask import (
    Satchel,
    current_identity,
    login_required,
    optional_identity,
    roles_required,
)

app = Flask(__name__)
satchel = Satchel(app, Settings())


@app.get("/hello")
@login_required
def hello() -> dict[str, str]:
    return {"hello": current_identity.username}


@app.get("/admin")
@roles_required("admin")
def admin() -> dict[str, str]:
    return {"admin": current_identity.username}


@app.get("/public")
def public() -> dict[str, object]:
    """Anyone; says who the caller is, if anyone (and which worker process answered)."""
    identity = optional_identity()
    return {"user": identity.username if identity else None, "pid": os.getpid()}


@app.post("/notes")
@login_required
def notes() -> dict[str, object]:
    """State-changing: with the session cookie it needs the same origin (or a CSRF token
    for a form post, from ``satchel.csrf_token()``); bearer clients need nothing."""
    return {"note": request.get_json(silent=True), "by": current_identity.username}


@app.get("/form-token")
def form_token() -> dict[str, str]:
    """A ``csrf_token`` for the caller's forms."""
    return {"csrf_token": satchel.csrf_token()}

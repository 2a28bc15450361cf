"""Flask apps for the frameworks table, served by gunicorn (sync workers), each answering
``GET /me``: no auth, satchel, and the peers a Flask user would pick.

Configuration comes from the environment (``BENCH_SECRET``, ``BENCH_DB``, ``SATCHEL_*``), set
by :mod:`benchmarks.frameworks`; each is a factory (``module:function()`` for gunicorn).
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from flask import Flask, jsonify

SECRET = os.environ.get("BENCH_SECRET", "")
USER = {"id": "00000000-0000-4000-8000-000000000001", "username": "bench"}


def plain() -> Flask:
    """Flask, no authentication: the ceiling."""
    app = Flask(__name__)

    @app.get("/me")
    def me() -> Any:
        return jsonify(user=None)

    return app


def satchel() -> Flask:
    """Flask + satchel (strategy and store from ``SATCHEL_*``), ``@login_required``."""
    from satchel.config.settings import Settings
    from satchel.integrations.flask import Satchel, current_identity, login_required

    app = Flask(__name__)
    Satchel(app, Settings())

    @app.get("/me")
    @login_required
    def me() -> Any:
        return jsonify(user=current_identity.username)

    return app


def jwt_extended() -> Flask:
    """Flask-JWT-Extended as its documentation sets it up: HS256, ``@jwt_required()``."""
    from flask_jwt_extended import JWTManager, create_access_token, get_jwt_identity, jwt_required

    app = Flask(__name__)
    app.config["JWT_SECRET_KEY"] = SECRET
    app.config["JWT_ACCESS_TOKEN_EXPIRES"] = timedelta(hours=1)
    JWTManager(app)

    @app.post("/login")
    def login() -> Any:
        return jsonify(access_token=create_access_token(identity=USER["id"]))

    @app.get("/me")
    @jwt_required()
    def me() -> Any:
        return jsonify(user=get_jwt_identity())

    return app


def login_session() -> Flask:
    """Flask-Login over Flask-Session's server-side sessions in SQLite (SQLAlchemy backend):
    every request loads the session row, then the user row."""
    from flask_login import LoginManager, UserMixin, current_user, login_required, login_user
    from flask_session import Session
    from flask_sqlalchemy import SQLAlchemy

    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=SECRET,
        SESSION_TYPE="sqlalchemy",
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{os.environ.get('BENCH_DB', 'flask-session.db')}",
        SESSION_PERMANENT=True,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=1),
    )
    db = SQLAlchemy(app)
    app.config["SESSION_SQLALCHEMY"] = db

    class Account(db.Model, UserMixin):  # type: ignore[name-defined,misc]
        id = db.Column(db.String(36), primary_key=True)
        username = db.Column(db.String(80), unique=True, nullable=False)

    Session(app)
    manager = LoginManager(app)

    @manager.user_loader
    def load_user(user_id: str) -> Any:
        return db.session.get(Account, user_id)

    with app.app_context():
        db.create_all()
        if db.session.get(Account, USER["id"]) is None:
            db.session.add(Account(id=USER["id"], username=USER["username"]))
            db.session.commit()

    @app.post("/login")
    def login() -> Any:
        login_user(db.session.get(Account, USER["id"]))
        return jsonify(ok=True)

    @app.get("/me")
    @login_required
    def me() -> Any:
        return jsonify(user=current_user.username)

    return app

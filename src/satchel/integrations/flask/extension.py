"""The Flask extension: ``Satchel(app, settings)`` or ``Satchel(settings=...).init_app(app)``.

Every request is authenticated before its view runs (the identity is on ``flask.g``, read
through :data:`current_identity` and :func:`optional_identity`); a repeated credential is
answered in the request thread from memory, anything else on the process's private event
loop (:class:`~satchel.integrations.sync.SyncAuth`). Errors raised by satchel — a 401 from
:func:`login_required`, a 403, a 503 when the store is down — become
``{"error": code, "detail": text}`` JSON.

**CSRF.** Flask has no CSRF protection of its own, so with the cookie transport every unsafe
request (POST, PUT, PATCH, DELETE) that carries satchel's cookie is checked before its view
runs, with exactly the rules of the ASGI glue (:func:`satchel.integrations.http_api.check_csrf`):
``Origin`` / ``Sec-Fetch-Site``, and the ``csrf_token`` form field or the ``X-CSRF-Token``
header for form posts (:meth:`Satchel.csrf_token` hands out the token). Mark a view
:func:`csrf_exempt` to skip it, or pass ``csrf=False`` when the application checks CSRF itself
(Flask-WTF uses the same field name). Bearer requests are never checked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Flask, Response, current_app, request

from satchel.clock import Clock, system_clock
from satchel.errors import NotSupported, SatchelError
from satchel.identity import Identity
from satchel.integrations.flask.api import blueprint, json_method_errors
from satchel.integrations.flask.glue import is_csrf_exempt, to_response
from satchel.integrations.http_api import ApiRequest, check_csrf
from satchel.integrations.sync import Resolution, SyncAuth
from satchel.integrations.sync.environ import all_headers, credential_headers, proof_request
from satchel.transports.csrf import SAFE_METHODS, needs_check

if TYPE_CHECKING:
    from satchel.accounts.passwords import PasswordHasher
    from satchel.config.settings import Settings
    from satchel.stores.base import UserStore

EXTENSION_KEY = "satchel"
#: Where the request's :class:`Resolution` is kept (``request.environ``).
ENVIRON_KEY = "satchel.resolution"
_ENVIRON_EXTRA = "satchel.headers"


class Satchel:
    """satchel on a Flask app: authentication per request, JSON errors, the ``/auth/*`` API.

    ``settings`` (default: the ``SATCHEL_*`` environment) builds the :class:`~satchel.Auth`
    lazily in each worker process; ``users`` is the application's own user store
    (``docs/users.md``). ``routes`` adds the blueprint with the reference server's JSON
    routes under ``url_prefix``; ``csrf`` checks unsafe cookie requests (module docstring).
    ``sync`` shares an existing :class:`SyncAuth` instead of building one.
    """

    def __init__(
        self,
        app: Flask | None = None,
        settings: Settings | None = None,
        *,
        users: UserStore | None = None,
        hasher: PasswordHasher | None = None,
        clock: Clock = system_clock,
        sync: SyncAuth | None = None,
        routes: bool = True,
        url_prefix: str = "",
        csrf: bool = True,
    ) -> None:
        self.sync = (
            sync
            if sync is not None
            else SyncAuth(settings, users=users, hasher=hasher, clock=clock)
        )
        self.routes = routes
        self.url_prefix = url_prefix
        self.csrf = csrf
        if app is not None:
            self.init_app(app)

    def __repr__(self) -> str:
        return f"Satchel({self.sync!r})"

    def init_app(self, app: Flask) -> None:
        """Register the request hooks, the error handler and (with ``routes``) the API."""
        app.extensions[EXTENSION_KEY] = self
        app.before_request(self._authenticate)
        app.after_request(self._add_headers)
        app.register_error_handler(SatchelError, self._error)
        if self.routes:
            app.register_blueprint(blueprint(self), url_prefix=self.url_prefix or None)
            json_method_errors(app, self.url_prefix)

    # --- per request ------------------------------------------------------------------------

    def resolution(self) -> Resolution:
        """What authenticating the current request found (authenticates it on first use)."""
        environ = request.environ
        found: Resolution | None = environ.get(ENVIRON_KEY)
        return found if found is not None else self._resolve(environ)

    def _resolve(self, environ: dict[str, Any]) -> Resolution:
        # The raw environ values: path and peer matter only for a refresh in place.
        found = self.sync.resolve(
            credential_headers(environ),
            path=environ.get("PATH_INFO") or "/",
            peer=environ.get("REMOTE_ADDR"),
            request=proof_request(environ),  # None unless a DPoP proof came
        )
        environ[ENVIRON_KEY] = found
        return found

    def _authenticate(self) -> None:
        # The environ, not flask.g: each proxy lookup costs about a microsecond.
        environ = request.environ
        found = self._resolve(environ)
        if self.csrf and environ.get("REQUEST_METHOD") not in SAFE_METHODS:
            view = current_app.view_functions.get(request.endpoint or "")
            if view is not None and not is_csrf_exempt(view):
                self._check_csrf(found)

    def _check_csrf(self, found: Resolution) -> None:
        auth = self.sync.auth
        if auth.csrf is None:
            return
        from satchel.integrations.http_api.routes import cookie_names

        headers = credential_headers(request.environ)
        if not needs_check(request.method, headers, cookie_names(auth)):
            return
        check_csrf(auth, self.api_request(found, with_form=True))

    def api_request(
        self, found: Resolution, *, with_form: bool, params: dict[str, str] | None = None
    ) -> ApiRequest:
        """The current request as the shared API handlers read it."""
        form: dict[str, object] | None = None
        repeated: frozenset[str] = frozenset()
        if with_form and request.mimetype in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            form = {key: request.form[key] for key in request.form}
            form.update({key: request.files[key] for key in request.files})
            counts = [
                (k, len(request.form.getlist(k)) + len(request.files.getlist(k))) for k in form
            ]
            repeated = frozenset(k for k, n in counts if n > 1)
        return ApiRequest(
            method=request.method,
            path=request.path,
            headers=all_headers(request.environ),
            scheme=request.scheme,
            peer=request.remote_addr,
            form=form,
            identity=found.identity,
            transport=found.transport,
            error=found.error,
            params=params or {},
            repeated=repeated,
        )

    def _add_headers(self, response: Response) -> Response:
        environ = request.environ
        found: Resolution | None = environ.get(ENVIRON_KEY)
        extra: list[tuple[str, str]] = environ.get(_ENVIRON_EXTRA) or []
        if found is not None and found.headers:
            extra = [*found.headers, *extra]
        if extra:
            present = "Cache-Control" in response.headers
            for name, value in extra:
                if name.lower() == "cache-control" and present:
                    continue
                response.headers.add(name, value)
        return response

    def _error(self, error: SatchelError) -> Response:
        found: Resolution | None = request.environ.get(ENVIRON_KEY)
        transport = found.transport if found is not None else None
        return to_response(self.sync.error_response(error, transport))

    # --- helpers for views ------------------------------------------------------------------

    def csrf_token(self) -> str:
        """A CSRF token for a form of the current cookie session (``csrf_token`` field).

        For an anonymous caller it is the login form's token, bound to a pre-session cookie
        that this response sets when the browser has none yet.
        """
        auth = self.sync.auth
        if auth.csrf is None:
            raise NotSupported("CSRF tokens are only used with the cookie transport.")
        identity = self.resolution().identity
        if identity is not None and identity.transport == "cookie":
            return auth.csrf.token_for(identity)
        token, headers = auth.csrf.login_form(all_headers(request.environ))
        # The pre-session cookie (when new) and no-store go out with this response.
        environ = request.environ
        environ[_ENVIRON_EXTRA] = [*(environ.get(_ENVIRON_EXTRA) or []), *headers]
        return token


def extension() -> Satchel:
    """The :class:`Satchel` of the current app."""
    ext = current_app.extensions.get(EXTENSION_KEY)
    if not isinstance(ext, Satchel):
        raise RuntimeError("satchel is not set up on this app: Satchel(app, settings).")
    return ext


def current_resolution() -> Resolution:
    """What authenticating the current request found."""
    found: Resolution | None = request.environ.get(ENVIRON_KEY)
    return found if found is not None else extension().resolution()


def identity_or_none() -> Identity | None:
    """The caller's identity, or None for an anonymous request or a rejected credential."""
    return current_resolution().identity

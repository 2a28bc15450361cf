"""Configuration of the reference server and of :func:`~satchel.config.build.build_auth`.

Every field can be set through the environment with the ``SATCHEL_`` prefix
(``SATCHEL_STORE=redis://...``, ``SATCHEL_TRANSPORTS=bearer``). A bad value
raises :class:`satchel.errors.ConfigurationError` naming the setting, never echoing the value:
store URLs may carry passwords.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from satchel.errors import ConfigurationError
from satchel.stores import redact_url

TransportName = Literal["cookie", "bearer"]
KNOWN_TRANSPORTS: tuple[str, ...] = ("cookie", "bearer")
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+$")
_PUBLIC_URL = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+(/[A-Za-z0-9._~%!$&'()*+,;=:@/-]*)?$")


def _split_list(value: Any) -> Any:
    """Accept ``a,b`` and ``a b`` strings besides real lists (environment variables)."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return value  # JSON form; pydantic parses and validates it
        return [item for item in re.split(r"[,\s]+", text) if item]
    return value


def _default_transports() -> list[TransportName]:
    return ["cookie", "bearer"]


class Settings(BaseSettings):
    """Everything that maps configuration to objects; see :func:`build_auth`."""

    model_config = SettingsConfigDict(
        env_prefix="SATCHEL_",
        extra="ignore",
        validate_default=True,
        frozen=True,
    )

    # --- server ---------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    #: Honour X-Forwarded-For / -Proto only from these proxy addresses (none by default).
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: Requests bodies above this many bytes get 413 before any parsing.
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"

    # --- strategy and stores --------------------------------------------------------------
    strategy: Literal["session", "jwt", "hybrid"] = "session"
    store: str = Field(default="sqlite:///satchel.db", min_length=1)
    #: Put sessions on a different backend than users and keys (e.g. Redis next to SQL).
    sessions_store: str | None = None
    #: Revocation bus and throttling backend.
    redis_url: str | None = None
    key_prefix: str = Field(default="satchel", pattern=r"^[A-Za-z0-9_]{1,40}$")
    #: PostgreSQL schema holding satchel's tables (one per deployment sharing a database).
    pg_schema: str = Field(default="satchel", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    #: Each store call fails closed (503) after this many seconds.
    store_timeout: float = Field(default=2.0, gt=0, le=60)

    # --- revocation bus and local cache ---------------------------------------------------
    #: ``auto``: Redis when Redis is configured, PostgreSQL LISTEN/NOTIFY for PostgreSQL-only
    #: stores, a polled table in the file for SQLite, in-process for memory://.
    bus: Literal["auto", "redis", "postgres", "sqlite", "local", "none"] = "auto"
    #: SQLite bus: seconds between polls; a revocation reaches other processes this fast,
    #: and a process whose polling stalls stops trusting its cache after 3 intervals.
    bus_poll_interval: float = Field(default=0.05, ge=0.005, le=5.0)
    #: Seconds between purges of expired sessions by the server (0: only `satchel sessions
    #: purge`). Stores that expire keys themselves (Redis) only tidy their indexes.
    purge_interval: float = Field(default=3600.0, ge=0, le=7 * 86_400)
    #: Cache verified sessions per process (only ever trusted while the bus is healthy).
    cache: bool = True
    #: Upper bound, seconds, on trusting a cached session without re-reading the store.
    cache_ttl: float = Field(default=5.0, gt=0, le=300)
    #: Serve GET /debug/counters (store reads, cache hits, bus state); tests and benchmarks only.
    expose_counters: bool = False

    # --- scaling out: the revocation bus's own connection ---------------------------------
    #: The revocation bus connects here instead of through the store: a postgresql:// URL
    #: straight to the server when the store goes through PgBouncer (``?pgbouncer=true``),
    #: since LISTEN needs a session a transaction pooler cannot keep; or a redis:// /
    #: redis+cluster:// URL. Its scheme also picks the bus under ``bus=auto``.
    bus_url: str | None = None

    # --- transports -----------------------------------------------------------------------
    transports: Annotated[list[TransportName], NoDecode] = Field(
        default_factory=_default_transports, min_length=1
    )
    cookie_secure: bool = True
    cookie_samesite: Literal["lax", "strict", "none"] = "lax"
    #: Origins allowed to send state-changing cookie requests (besides our own).
    trusted_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # --- browser apps on other origins (CORS) ----------------------------------------------
    #: Exact origins (``https://host[:port]``) whose pages may call this server with the
    #: browser's credentials: CORS answers them (preflights, ``Vary: Origin``, never ``*``),
    #: and they count as trusted origins for the CSRF checks. None by default.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _cors_list(cls, value: Any) -> Any:
        value = _split_list(value)
        if isinstance(value, list):
            value = [v.strip().lower().rstrip("/") if isinstance(v, str) else v for v in value]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _cors_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin in ("*", "null"):
                raise ValueError(f"{origin!r} is not allowed: list each origin exactly")
            if not _ORIGIN.match(origin):
                raise ValueError("each origin must look like https://host[:port], no path")
        return value

    # --- tokens ---------------------------------------------------------------------------
    issuer: str = Field(default="satchel", min_length=1, max_length=200)
    audience: str = Field(default="satchel", min_length=1, max_length=200)
    jwt_alg: Literal["EdDSA", "ES256", "RS256", "HS256"] = "EdDSA"
    #: Lifetime of a signed access token, seconds (hybrid: 300 unless set).
    access_ttl: int = Field(default=900, ge=10, le=86_400)
    #: jwt: lifetime of a refresh-token family from sign-in (hybrid's end with the session's
    #: absolute time-out instead).
    refresh_ttl: int = Field(default=14 * 86_400, ge=60, le=400 * 86_400)
    #: Hybrid: refreshes racing with one token this many seconds apart get the same successor.
    refresh_grace: float = Field(default=10.0, ge=0, le=300)
    #: Hybrid, while the revocation bus is down: read the store per request, or answer 503.
    on_bus_down: Literal["store", "reject"] = "store"
    leeway: int = Field(default=30, ge=0, le=300)

    # --- sessions -------------------------------------------------------------------------
    idle_timeout: int = Field(default=1800, ge=30, le=400 * 86_400)
    absolute_timeout: int = Field(default=43_200, ge=60, le=400 * 86_400)
    remember_idle_timeout: int = Field(default=7 * 86_400, ge=60, le=400 * 86_400)
    remember_absolute_timeout: int = Field(default=30 * 86_400, ge=60, le=400 * 86_400)
    max_sessions_per_user: int | None = Field(default=None, ge=1, le=10_000)
    on_exceed: Literal["evict_oldest", "deny"] = "evict_oldest"

    # --- login throttling (failed attempts; 0 turns a limit off) ---------------------------
    #: Failed logins allowed per account in ``login_account_window`` seconds (ASVS 6.3.1).
    login_account_limit: int = Field(default=100, ge=0, le=1_000_000)
    login_account_window: int = Field(default=3600, ge=1, le=7 * 86_400)
    #: Failed logins allowed per client address in ``login_ip_window`` seconds.
    login_ip_limit: int = Field(default=20, ge=0, le=1_000_000)
    login_ip_window: int = Field(default=60, ge=1, le=7 * 86_400)

    # --- operations: metrics, logs, checks at start, shutdown (docs/operations.md) ---------
    #: Serve ``/metrics`` (Prometheus) on this separate port; off when unset.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    #: Address of the metrics port: loopback unless an operator opens it on purpose.
    metrics_host: str = "127.0.0.1"
    #: Serve ``/metrics`` on the main port too, to ``Authorization: Bearer <token>`` only.
    metrics_token: SecretStr | None = None
    #: ``json``: one JSON object per log line (time, level, event, request id, fields).
    log_format: Literal["text", "json"] = "text"
    #: An HS256 signing secret of the operator's (>= 32 bytes), for services that verify
    #: tokens with a shared secret instead of fetching the JWKS; needs ``jwt_alg=HS256``.
    jwt_secret: SecretStr | None = None
    #: The session cookie's name (default ``__Host-satchel``; ``__Secure-satchel`` with a
    #: domain) and its ``Domain`` attribute (none by default: the cookie stays on this host).
    cookie_name: str | None = None
    cookie_domain: str | None = None
    #: Seconds between publishing a rotated-in key and signing with it (>= 2 x reload).
    key_publish_delay: float = Field(default=120.0, gt=0, le=30 * 86_400)
    #: Longest time, seconds, a process keeps its view of the stored keys.
    key_reload_interval: float = Field(default=60.0, gt=0, le=86_400)
    #: DPoP (RFC 9449, docs/dpop.md): ``off`` ignores DPoP headers and issues Bearer tokens;
    #: ``allowed`` binds the tokens of a token request that carries a proof; ``required``
    #: also refuses token requests without a proof and unbound bearer tokens.
    dpop: Literal["off", "allowed", "required"] = "allowed"
    #: Demand a server nonce (``DPoP-Nonce``) in every proof; it lives this many seconds.
    dpop_nonce: bool = False
    dpop_nonce_ttl: int = Field(default=300, ge=10, le=86_400)
    #: A proof's ``iat`` may be this many seconds old (and 5 seconds ahead of our clock).
    dpop_max_age: int = Field(default=60, ge=5, le=600)
    #: ``/readyz`` gives each store and the revocation channel this many seconds to answer.
    ready_timeout: float = Field(default=1.0, gt=0, le=30)
    #: On SIGTERM, in-flight requests get this many seconds to finish before they are cut.
    shutdown_timeout: float = Field(default=10.0, gt=0, le=600)
    # --- accounts and mail (docs/accounts.md) ----------------------------------------------
    #: Where mail goes: smtp://, smtp+starttls://, smtps://, console://, file:///dir or
    #: none://. Unset: console:// for a memory:// or SQLite store (a local setup), else none://.
    mail_url: str | None = Field(default=None, min_length=1, max_length=2000)
    mail_from: str = Field(default="satchel <no-reply@localhost.localdomain>", max_length=320)
    #: A folder whose mail templates replace the bundled ones of the same name.
    mail_templates: str | None = None
    #: Attempts per mail (the first and the retries), and the first retry's delay, seconds.
    mail_attempts: int = Field(default=4, ge=1, le=20)
    mail_retry_delay: float = Field(default=2.0, ge=0, le=600)
    mail_queue_size: int = Field(default=1000, ge=1, le=1_000_000)
    #: The address users reach this server at; every link in a mail starts with it (never
    #: with the request's Host header). Unset: http://HOST:PORT.
    public_url: str | None = None
    #: Who may create an account: nobody (``closed``), holders of an invitation, or anyone.
    signup: Literal["closed", "invite", "open"] = "closed"
    setup_ttl: int = Field(default=3600, ge=60, le=7 * 86_400)
    invite_ttl: int = Field(default=7 * 86_400, ge=60, le=90 * 86_400)
    verify_ttl: int = Field(default=86_400, ge=60, le=30 * 86_400)
    reset_ttl: int = Field(default=1800, ge=60, le=86_400)
    signin_link_ttl: int = Field(default=600, ge=60, le=86_400)
    email_change_ttl: int = Field(default=86_400, ge=60, le=30 * 86_400)
    #: A password reset ends every session; a confirmed address change ends the others.
    reset_ends_sessions: bool = True
    email_change_ends_sessions: bool = True
    #: Mail requests (reset, sign-in link, sign-up) per e-mail address and per client.
    mail_address_limit: int = Field(default=5, ge=1, le=1_000_000)
    mail_address_window: int = Field(default=3600, ge=1, le=7 * 86_400)
    mail_ip_limit: int = Field(default=30, ge=1, le=1_000_000)
    mail_ip_window: int = Field(default=3600, ge=1, le=7 * 86_400)
    #: Failed links or codes per client, and wrong sign-in codes per address.
    token_failure_limit: int = Field(default=50, ge=1, le=1_000_000)
    token_failure_window: int = Field(default=3600, ge=1, le=7 * 86_400)
    code_attempt_limit: int = Field(default=5, ge=1, le=100)

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        text = value.strip().rstrip("/")
        if not _PUBLIC_URL.match(text):
            raise ValueError("must look like https://host[:port][/path], no query")
        return text

    # --- second factors, passkeys and step-up (docs/mfa.md) --------------------------------
    #: When a second factor is required: off, optional (accounts that set one up use it),
    #: required_for_admins (the admin role must set one up at sign-in), required.
    mfa: Literal["off", "optional", "required_for_admins", "required"] = "optional"
    #: Password change, email change, adding or removing a factor and admin actions need
    #: an authentication (sign-in or POST /auth/reauthenticate) this many seconds old at most.
    fresh_age: int = Field(default=300, ge=10, le=86_400)
    #: Seconds an mfa_token (password accepted, second factor pending) lives; single use.
    mfa_token_ttl: int = Field(default=300, ge=30, le=1800)
    #: Failed second-factor codes allowed per account in ``mfa_attempt_window`` seconds.
    mfa_attempts: int = Field(default=5, ge=1, le=1000)
    mfa_attempt_window: int = Field(default=900, ge=10, le=7 * 86_400)
    #: The name authenticator apps show beside the account (default: ``issuer``).
    totp_issuer: str | None = Field(default=None, min_length=1, max_length=100)
    #: WebAuthn relying party id: the site's registrable domain (passkeys are bound to it).
    webauthn_rp_id: str = Field(default="localhost", pattern=r"^[a-z0-9.\-]{1,253}$")
    webauthn_rp_name: str = Field(default="satchel", min_length=1, max_length=100)
    #: Origins passkey ceremonies may come from (default: https://RP_ID, and for
    #: localhost also http://localhost:PORT).
    webauthn_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # --- device bound session credentials (docs/dbsc.md) -----------------------------------
    #: ``allowed``: cookie sign-ins of the session strategy offer DBSC (W3C draft dbsc-1);
    #: browsers without it ignore the offer. ``off``: never offered, and no bound cookie is
    #: asked of sessions bound earlier.
    dbsc: Literal["off", "allowed"] = "allowed"
    #: Seconds a bound cookie lives; a DBSC browser renews it with a fresh proof.
    dbsc_cookie_ttl: int = Field(default=600, ge=10, le=86_400)
    #: Seconds a registration or refresh challenge stays usable (once).
    dbsc_challenge_ttl: int = Field(default=300, ge=10, le=3600)
    #: End the session when a refresh proof is signed by a key other than the registered one.
    dbsc_end_on_wrong_key: bool = True

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise ConfigurationError(describe_validation_error(exc)) from None

    @field_validator(
        "transports", "trusted_origins", "trusted_proxies", "webauthn_origins", mode="before"
    )
    @classmethod
    def _lists(cls, value: Any) -> Any:
        value = _split_list(value)
        if isinstance(value, list):
            value = [v.strip().lower() if isinstance(v, str) else v for v in value]
        return value

    @field_validator("metrics_token", "jwt_secret", "cookie_name", "cookie_domain", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # ``SATCHEL_COOKIE_DOMAIN=`` in an env file means "not set", not "the empty name".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("transports")
    @classmethod
    def _unique_transports(cls, value: list[TransportName]) -> list[TransportName]:
        if len(set(value)) != len(value):
            raise ValueError("each transport may be listed once")
        return value

    @field_validator("trusted_origins", "webauthn_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if not _ORIGIN.match(origin):
                raise ValueError("each origin must look like https://host[:port], no path")
        return [origin.rstrip("/") for origin in value]

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.absolute_timeout < self.idle_timeout:
            raise ValueError("absolute_timeout must be at least idle_timeout")
        if self.remember_absolute_timeout < self.remember_idle_timeout:
            raise ValueError("remember_absolute_timeout must be at least remember_idle_timeout")
        if self.remember_absolute_timeout < self.absolute_timeout:
            raise ValueError("remember_absolute_timeout must be at least absolute_timeout")
        return self

    @property
    def passkey_origins(self) -> tuple[str, ...]:
        """The origins passkey ceremonies are accepted from (see ``webauthn_origins``)."""
        if self.webauthn_origins:
            return tuple(self.webauthn_origins)
        out = [f"https://{self.webauthn_rp_id}"]
        if self.webauthn_rp_id == "localhost":
            out.append(f"http://localhost:{self.port}")
        return tuple(out)

    @property
    def transport_names(self) -> tuple[str, ...]:
        """The configured transports, in precedence order."""
        return tuple(self.transports)

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            if name in (
                "store",
                "sessions_store",
                "redis_url",
                "mail_url",
                "bus_url",
            ) and isinstance(value, str):
                yield name, redact_url(value)
            else:
                yield name, value


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem, naming the setting and the rule; input values are left out."""
    lines = []
    for error in exc.errors(include_input=False, include_url=False):
        loc = ".".join(str(part) for part in error.get("loc", ()) if not isinstance(part, int))
        name = f"SATCHEL_{loc.upper()}" if loc else "settings"
        message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        lines.append(f"{name}: {message}")
    return "Invalid configuration: " + "; ".join(lines)

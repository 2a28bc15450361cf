"""Configuration checked at start: every problem, one line each, naming the setting.

:func:`check_settings` is pure (rules over :class:`Settings`); :func:`probe_settings` reaches
each configured Redis and PostgreSQL once (reachable? a Redis that evicts keys?); and
:func:`check_all` is both. ``satchel config check`` prints them with the effective
configuration (:func:`effective_config`, secrets masked); ``satchel serve`` refuses to start
on an error and prints the warnings. A message names the setting and says what to do,
never echoing a secret or a URL's password.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from satchel.errors import ConfigurationError
from satchel.jose.signing_key import MIN_HMAC_SECRET
from satchel.stores import redact_url

if TYPE_CHECKING:
    from satchel.config.settings import Settings

#: Shortest accepted metrics token, characters.
MIN_METRICS_TOKEN = 32
#: Seconds each store probe may take.
PROBE_TIMEOUT = 2.0
_HOST_PREFIX = "__host-"

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem with the configuration, about one setting."""

    setting: str  # SATCHEL_<NAME>
    message: str
    severity: Severity = "error"

    def line(self) -> str:
        """``SATCHEL_NAME: message`` (one line)."""
        return f"{self.setting}: {self.message}"


class ConfigProblems(ConfigurationError):
    """Raised when the configuration has errors; ``problems`` holds every one of them."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = [p for p in problems if p.severity == "error"]
        super().__init__("; ".join(p.line() for p in self.problems))


def errors(problems: Iterable[Problem]) -> list[Problem]:
    """The problems that stop the server."""
    return [p for p in problems if p.severity == "error"]


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses."""
    if host.lower() in ("localhost", "localhost.", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# --- rules ------------------------------------------------------------------------------------


def check_settings(settings: Settings) -> list[Problem]:
    """Every rule over ``settings`` (a :class:`~satchel.config.settings.Settings`); no I/O."""
    found: list[Problem] = []
    for rule in (_jwt_secret, _cookies, _keys, _proxies, _plain_http, _metrics):
        found.extend(rule(settings))
    return found


def _jwt_secret(s: Settings) -> list[Problem]:
    if s.jwt_secret is None:
        return []
    size = len(s.jwt_secret.get_secret_value().encode("utf-8"))
    out = []
    if size < MIN_HMAC_SECRET:
        out.append(
            Problem(
                "SATCHEL_JWT_SECRET",
                f"is {size} bytes; an HS256 secret must be at least {MIN_HMAC_SECRET} bytes "
                "(make one: python -c 'import secrets; print(secrets.token_urlsafe(32))').",
            )
        )
    if s.jwt_alg != "HS256":
        out.append(
            Problem(
                "SATCHEL_JWT_SECRET",
                f"is an HS256 secret but SATCHEL_JWT_ALG is {s.jwt_alg}; set "
                "SATCHEL_JWT_ALG=HS256 or unset SATCHEL_JWT_SECRET.",
            )
        )
    if s.strategy == "session":
        out.append(
            Problem(
                "SATCHEL_JWT_SECRET",
                "is set but the session strategy signs no tokens; it is not used.",
                "warning",
            )
        )
    return out


def _cookies(s: Settings) -> list[Problem]:
    if "cookie" not in s.transports:
        return []
    out = []
    if s.cookie_samesite == "none" and not s.cookie_secure:
        out.append(
            Problem(
                "SATCHEL_COOKIE_SAMESITE",
                "none needs Secure cookies (browsers drop SameSite=None cookies without "
                "Secure); set SATCHEL_COOKIE_SECURE=true or use lax.",
            )
        )
    name = (s.cookie_name or "").lower()
    if s.cookie_domain is not None and name.startswith(_HOST_PREFIX):
        out.append(
            Problem(
                "SATCHEL_COOKIE_DOMAIN",
                f"cannot be used with a __Host- cookie (SATCHEL_COOKIE_NAME={s.cookie_name}): "
                "browsers reject __Host- cookies that have a Domain; unset the domain, or "
                "name the cookie __Secure-... .",
            )
        )
    if not out:
        try:
            from satchel.config.transports import build_transports

            build_transports(s)
        except ConfigurationError as exc:
            setting = "SATCHEL_COOKIE_NAME" if s.cookie_name else "SATCHEL_COOKIE_DOMAIN"
            out.append(Problem(setting, exc.detail))
    return out


def _keys(s: Settings) -> list[Problem]:
    from satchel.config.keys import key_timing

    delay, interval = key_timing(s)
    if delay >= 2 * interval:
        return []
    return [
        Problem(
            "SATCHEL_KEY_PUBLISH_DELAY",
            f"{delay:g} s is shorter than 2 x SATCHEL_KEY_RELOAD_INTERVAL ({interval:g} s): a "
            "process could still hold its old keys when a new key starts signing, and refuse "
            f"its tokens; use at least {2 * interval:g} s or a shorter reload interval.",
        )
    ]


def _proxies(s: Settings) -> list[Problem]:
    from satchel.transports.client_ip import parse_networks

    try:
        networks = parse_networks(s.trusted_proxies)
    except ConfigurationError as exc:
        return [Problem("SATCHEL_TRUSTED_PROXIES", exc.detail)]
    for network in networks:
        if network.prefixlen == 0:
            return [
                Problem(
                    "SATCHEL_TRUSTED_PROXIES",
                    f"{network} trusts every client to set X-Forwarded-For: anyone could "
                    "choose the address they sign in from (and dodge the per-address limit); "
                    "list your proxies' addresses.",
                )
            ]
    return []


def _plain_http(s: Settings) -> list[Problem]:
    if "cookie" not in s.transports or not s.cookie_secure:
        return []
    if is_loopback(s.host) or s.trusted_proxies:
        return []
    return [
        Problem(
            "SATCHEL_COOKIE_SECURE",
            f"cookies are Secure but the server serves plain HTTP on {s.host} with no trusted "
            "proxy: browsers will not send them back over http://, so browser sign-in fails. "
            "Put TLS in front (a proxy listed in SATCHEL_TRUSTED_PROXIES), or set "
            "SATCHEL_COOKIE_SECURE=false on a trusted network.",
            "warning",
        )
    ]


def _metrics(s: Settings) -> list[Problem]:
    out = []
    token = s.metrics_token
    if token is not None and len(token.get_secret_value()) < MIN_METRICS_TOKEN:
        out.append(
            Problem(
                "SATCHEL_METRICS_TOKEN",
                f"must be at least {MIN_METRICS_TOKEN} characters (make one: python -c "
                "'import secrets; print(secrets.token_urlsafe(32))').",
            )
        )
    if s.metrics_port is not None and s.metrics_port == s.port:
        out.append(
            Problem(
                "SATCHEL_METRICS_PORT",
                f"is the main port ({s.port}); the metrics port must be a port of its own "
                "(or use SATCHEL_METRICS_TOKEN to serve /metrics on the main port).",
            )
        )
    if s.metrics_port is not None and token is None and not is_loopback(s.metrics_host):
        out.append(
            Problem(
                "SATCHEL_METRICS_HOST",
                f"{s.metrics_host} opens /metrics to the network without a token; keep it "
                "on a private network or set SATCHEL_METRICS_TOKEN.",
                "warning",
            )
        )
    return out


# --- probes -----------------------------------------------------------------------------------


def _urls(s: Settings) -> list[tuple[str, str]]:
    """``(setting, url)`` of each configured store and Redis URL, each URL once."""
    out: list[tuple[str, str]] = []
    for setting, url in (
        ("SATCHEL_STORE", s.store),
        ("SATCHEL_SESSIONS_STORE", s.sessions_store),
        ("SATCHEL_REDIS_URL", s.redis_url),
    ):
        if url and all(url != seen for _, seen in out):
            out.append((setting, url))
    return out


async def probe_settings(settings: Settings, limit: float = PROBE_TIMEOUT) -> list[Problem]:
    """Reach each configured Redis and PostgreSQL once (concurrently); SQLite's folder must
    exist. Reads only: nothing is created or migrated."""
    probes = [_probe(setting, url, limit) for setting, url in _urls(settings)]
    found: list[Problem] = []
    for result in await asyncio.gather(*probes):
        found.extend(result)
    return found


async def check_all(settings: Settings, limit: float = PROBE_TIMEOUT) -> list[Problem]:
    """:func:`check_settings` then :func:`probe_settings`."""
    return check_settings(settings) + await probe_settings(settings, limit)


def _unreachable(setting: str, url: str, why: str) -> Problem:
    return Problem(setting, f"cannot reach {redact_url(url)} ({why}).")


async def _probe(setting: str, url: str, limit: float) -> list[Problem]:
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    try:
        if scheme in ("redis", "rediss"):
            return await _probe_redis(setting, url, limit)
        if scheme in ("postgresql", "postgres"):
            return await _probe_postgres(setting, url, limit)
        if scheme == "sqlite":
            return _probe_sqlite(setting, url)
    except ImportError as exc:
        return [Problem(setting, f"needs an optional dependency ({exc.name}).")]
    except ConfigurationError as exc:
        return [Problem(setting, exc.detail)]
    except TimeoutError:
        return [_unreachable(setting, url, f"no answer in {limit:g} s")]
    except Exception as exc:  # drivers raise their own types; the class name is enough
        return [_unreachable(setting, url, type(exc).__name__)]
    return []


async def _probe_redis(setting: str, url: str, limit: float) -> list[Problem]:
    from satchel.stores.redis_client import aw, connect

    client = connect(url, socket_timeout=limit, socket_connect_timeout=limit)
    try:
        async with asyncio.timeout(limit * 2):
            await aw(client.ping())
            try:
                config = await aw(client.config_get("maxmemory-policy"))
            except Exception:  # CONFIG is often disabled on managed Redis
                return [
                    Problem(
                        setting,
                        f"could not read maxmemory-policy of {redact_url(url)} (CONFIG is "
                        "disabled); make sure it is noeviction.",
                        "warning",
                    )
                ]
    finally:
        await client.aclose()
    policy = config.get(b"maxmemory-policy", config.get("maxmemory-policy"))
    name = policy.decode() if isinstance(policy, bytes) else str(policy or "")
    if name and name != "noeviction":
        return [
            Problem(
                setting,
                f"Redis at {redact_url(url)} has maxmemory-policy {name}, which evicts keys "
                "under memory pressure (sessions, revocations, failed-login counters); set "
                "maxmemory-policy noeviction.",
            )
        ]
    return []


async def _probe_postgres(setting: str, url: str, limit: float) -> list[Problem]:
    import asyncpg

    async with asyncio.timeout(limit * 2):
        conn = await asyncpg.connect(url, timeout=limit)
        try:
            await conn.fetchval("SELECT 1")
        finally:
            await conn.close()
    return []


def _probe_sqlite(setting: str, url: str) -> list[Problem]:
    import os

    from satchel.stores import sqlite_path

    path = os.path.abspath(sqlite_path(url))
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        return [Problem(setting, f"the folder of {path} does not exist.")]
    target = path if os.path.exists(path) else folder
    if not os.access(target, os.R_OK | os.W_OK):
        return [Problem(setting, f"{target} is not readable and writable by this user.")]
    return []


# --- the effective configuration --------------------------------------------------------------

_URL_FIELDS = frozenset({"store", "sessions_store", "redis_url"})


def effective_config(settings: Settings) -> list[tuple[str, str, bool]]:
    """``(SATCHEL_NAME, shown value, set explicitly)`` for every setting, secrets masked."""
    from pydantic import SecretStr

    explicit = settings.model_fields_set
    rows = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            shown = f"*** ({len(value.get_secret_value())} characters)"
        elif value is None:
            shown = "(unset)"
        elif name in _URL_FIELDS:
            shown = redact_url(str(value))
        elif isinstance(value, list | tuple):
            shown = ",".join(str(v) for v in value) or "(none)"
        else:
            shown = str(value).lower() if isinstance(value, bool) else str(value)
        rows.append((f"SATCHEL_{name.upper()}", shown, name in explicit))
    return rows

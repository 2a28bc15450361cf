"""Login throttling per account and per client address (ASVS 6.3.1, checklist P02).

Counters live in a storage of the ``limits`` library: in memory for one process, in Redis
(``async+redis://``) when several processes share the load. Each limit is a sliding window
counter — the current fixed window plus the previous one weighted by how much of it still
overlaps the sliding window — so a burst straddling a window boundary cannot double the
allowance, and it needs two counters instead of one entry per attempt. The window arithmetic
uses satchel's injectable clock (the storages' own expiry only garbage-collects old
counters), so tests move time instead of sleeping.

Rules:

- Only failures count; a correct password is never a "failure". The limit is checked
  *before* the password is verified, so during a lockout a correct password gets exactly
  the same 429 as a wrong one and the lockout reveals nothing.
- Accounts are keyed on the normalised username (hashed, so no username reaches the
  storage); unknown usernames are counted the same way as real ones.
- If the storage fails or is slow the attempt is refused with 503: a limiter that is down
  must never mean unlimited attempts (F05).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
from dataclasses import dataclass
from typing import Any

from limits.aio.storage import MemoryStorage, Storage
from limits.storage import storage_from_string

from satchel.accounts.users import normalize_username
from satchel.clock import Clock, system_clock
from satchel.errors import ConfigurationError, InvalidInput, StoreUnavailable, Throttled
from satchel.stores import redact_url

logger = logging.getLogger("satchel.throttle")

#: A storage call slower than this fails the login closed (503).
STORAGE_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """How many failed logins are allowed, per account and per client address.

    Defaults: 100 failures per account per hour (ASVS 6.3.1's ceiling) and 20 per address
    per minute. A limit of 0 turns that dimension off.
    """

    account_limit: int = 100
    account_window: float = 3600.0
    ip_limit: int = 20
    ip_window: float = 60.0

    def __post_init__(self) -> None:
        for name in ("account_limit", "ip_limit"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigurationError(f"{name} must be a non-negative integer.")
        for name in ("account_window", "ip_window"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 1 <= value <= 7 * 86_400:
                raise ConfigurationError(f"{name} must be between 1 second and 7 days.")


class LoginThrottled(Throttled):
    """Too many failed logins; ``scope`` says which limit (``"account"`` or ``"ip"``)."""

    def __init__(self, retry_after: int, scope: str) -> None:
        super().__init__(retry_after)
        self.scope = scope


@dataclass(frozen=True, slots=True)
class _Limit:
    kind: str  # "account" or "ip"; also the audit reason
    limit: int
    window: float


def _key_part(value: str) -> str:
    # Hashed: bounded key length, and no username or address stored in clear.
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def account_key(username: object) -> str:
    """The throttling key of a username: its normalised form, or the raw text if invalid."""
    try:
        return normalize_username(username)
    except InvalidInput:
        return str(username)[:1024]


def _cluster_target(url: str, options: dict[str, Any]) -> str:
    """limits' URL for a ``redis+cluster://`` URL; credentials and TLS go into ``options``.

    Parsed by the cluster store's own parser, so both accept the same URLs and neither
    echoes a password in its errors. Every counter is one key, so no command crosses slots.
    """
    from satchel.stores.redis_cluster_client import parse

    parsed = parse(url)
    if parsed.username is not None:
        options["username"] = parsed.username
    if parsed.password is not None:
        options["password"] = parsed.password
    if parsed.tls:
        options["ssl"] = True
    hosts = ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in parsed.nodes)
    return f"async+redis+cluster://{hosts}"


def retry_after(prev: int, cur: int, limit: int, window: float, elapsed: float) -> float:
    """Seconds until the sliding window count ``prev*(1-e/W)+cur`` drops below ``limit``."""
    if cur >= limit:
        # The current window's count alone is over: wait for it to become the previous one
        # and decay far enough.
        return (window - elapsed) + window * (1 - limit / cur)
    needed = 1 - (limit - cur) / prev if prev else 0.0
    return max(0.0, window * needed - elapsed)


class LoginThrottle:
    """Counts failed logins and refuses attempts over the limits with :class:`Throttled`.

    ``storage`` is a ``limits.aio.storage`` instance (memory by default); see
    :meth:`from_url` for building one from a URL.
    """

    def __init__(
        self,
        storage: Storage | None = None,
        policy: ThrottlePolicy | None = None,
        *,
        clock: Clock = system_clock,
        prefix: str = "satchel",
        timeout: float = STORAGE_TIMEOUT,
    ) -> None:
        self.storage: Storage = storage if storage is not None else MemoryStorage()
        self.policy = policy or ThrottlePolicy()
        self.clock = clock
        self.prefix = prefix
        self.timeout = timeout
        self._limits = tuple(
            limit
            for limit in (
                _Limit("account", self.policy.account_limit, self.policy.account_window),
                _Limit("ip", self.policy.ip_limit, self.policy.ip_window),
            )
            if limit.limit > 0
        )

    @classmethod
    def from_url(
        cls,
        url: str | None,
        policy: ThrottlePolicy | None = None,
        *,
        clock: Clock = system_clock,
        prefix: str = "satchel",
    ) -> LoginThrottle:
        """A throttle on ``url``: None or ``memory://`` for this process, ``redis://``,
        ``rediss://`` or ``async+redis://`` for a shared Redis, ``redis+cluster://`` (or
        ``rediss+cluster://``) for a Redis Cluster."""
        if url is None or url.startswith(("memory:", "async+memory:")):
            return cls(MemoryStorage(), policy, clock=clock, prefix=prefix)
        target = url
        options: dict[str, Any] = {"implementation": "redispy", "key_prefix": f"{prefix}:thr"}
        if url.lower().startswith(("redis+cluster://", "rediss+cluster://")):
            target = _cluster_target(url, options)
        elif url.startswith(("redis://", "rediss://", "redis+unix://")):
            target = "async+" + url
        if not target.startswith(
            ("async+redis://", "async+rediss://", "async+redis+unix://", "async+redis+cluster://")
        ):
            raise ConfigurationError("The throttle storage must be memory:// or a Redis URL.")
        try:
            storage = storage_from_string(target, **options)
        except Exception as exc:
            raise ConfigurationError(
                f"Cannot use {redact_url(url)} for login throttling: {type(exc).__name__}."
            ) from None
        if not isinstance(storage, Storage):
            raise ConfigurationError("The throttle storage must be an async storage.")
        return cls(storage, policy, clock=clock, prefix=prefix)

    def __repr__(self) -> str:
        return f"LoginThrottle(storage={type(self.storage).__name__}, policy={self.policy!r})"

    # --- keys -----------------------------------------------------------------------------

    def _subjects(self, username: object, ip: str | None) -> list[tuple[_Limit, str]]:
        out: list[tuple[_Limit, str]] = []
        for limit in self._limits:
            if limit.kind == "account":
                out.append((limit, f"{self.prefix}:login:a:{_key_part(account_key(username))}"))
            elif ip:
                out.append((limit, f"{self.prefix}:login:i:{_key_part(ip)}"))
        return out

    async def _call(self, operation: Any) -> Any:
        try:
            async with asyncio.timeout(self.timeout):
                return await operation
        except Exception as exc:
            logger.warning("login throttle storage failed: %s", type(exc).__name__)
            raise StoreUnavailable("Login is temporarily unavailable.") from None

    # --- the two calls Auth.login makes -----------------------------------------------------

    async def check(self, username: object, ip: str | None) -> None:
        """Raise :class:`LoginThrottled` (429) when the account or the address is over its limit.

        Call before verifying the password. :class:`StoreUnavailable` when the counters
        cannot be read.
        """
        now = self.clock()
        subjects = self._subjects(username, ip)
        # One deadline for every read: each ``asyncio.timeout`` schedules and cancels a timer,
        # which cost more than the reads themselves on the in-memory storage.
        counts = await self._call(self._read_counts(subjects, now))
        for (limit, _key), (prev, cur) in zip(subjects, counts, strict=True):
            bucket = math.floor(now / limit.window)
            elapsed = now - bucket * limit.window
            weighted = prev * (limit.window - elapsed) / limit.window + cur
            if weighted >= limit.limit:
                wait = retry_after(prev, cur, limit.limit, limit.window, elapsed)
                raise LoginThrottled(math.ceil(wait) or 1, limit.kind)

    async def _read_counts(
        self, subjects: list[tuple[_Limit, str]], now: float
    ) -> list[tuple[int, int]]:
        """(previous, current) bucket counts of each subject's sliding window."""
        out = []
        for limit, key in subjects:
            bucket = math.floor(now / limit.window)
            prev = int(await self.storage.get(f"{key}:{bucket - 1}"))
            cur = int(await self.storage.get(f"{key}:{bucket}"))
            out.append((prev, cur))
        return out

    async def failure(self, username: object, ip: str | None) -> None:
        """Count one failed login for the account and the address."""
        now = self.clock()
        for limit, key in self._subjects(username, ip):
            bucket = math.floor(now / limit.window)
            # Kept two windows: the previous bucket is still read while it overlaps.
            expiry = math.ceil(2 * limit.window) + 1
            await self._call(self.storage.incr(f"{key}:{bucket}", expiry))

    async def reset(self, username: object, ip: str | None = None) -> None:
        """Forget the counters of an account (and address), e.g. after an admin unlock."""
        now = self.clock()
        for limit, key in self._subjects(username, ip):
            bucket = math.floor(now / limit.window)
            for b in (bucket - 1, bucket):
                await self._call(self.storage.clear(f"{key}:{b}"))

    async def close(self) -> None:
        """Release the storage's connections (the Redis client, when there is one)."""
        # limits' async Redis storage has no close(); its client sits on the bridge.
        client = getattr(getattr(self.storage, "bridge", None), "storage", None)
        closer = getattr(client, "aclose", None)
        if closer is None:
            return
        try:
            await closer()
        except Exception:  # closing a broken connection must not fail shutdown
            logger.debug("throttle storage close failed", exc_info=True)

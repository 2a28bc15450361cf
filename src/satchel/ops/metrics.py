"""What the server counts for ``/metrics``, with no metrics library and no framework.

Counting is off unless :meth:`Metrics.attach` is called (the reference server does when
``SATCHEL_METRICS_PORT`` or ``SATCHEL_METRICS_TOKEN`` is set). Off, nothing is recorded: the
store wrapper's observer is None and the audit log has no metrics hook, so the request path
is the same as without this module.

On, two hooks feed it, both outside the per-request path of a cached credential:

- every store call already passes :class:`~satchel.stores.deadline.DeadlineStore`; its
  observer adds the call's duration to a histogram of (store, operation) here;
- every sign-in, refresh and revocation already passes the :class:`~satchel.audit.AuditLog`;
  a hook chained in front of the application's counts them by outcome and kind.

Cache hits, store reads and the revocation channel's state are counters the strategy and the
bus keep anyway; :mod:`satchel.ops.exposition` reads them at scrape time.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from satchel.audit import AuditEvent, AuditHook, AuditLog
from satchel.stores.deadline import CallObserver, DeadlineStore

if TYPE_CHECKING:
    from satchel.auth import Auth

#: Upper bounds, seconds, of the store-call histogram buckets (plus +Inf).
STORE_BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)

#: What each audit event ends, for ``satchel_revocations_total{kind}``.
_REVOCATION_KINDS: dict[str, str] = {
    "logout": "logout",
    "password.changed": "password_change",
    "roles.changed": "roles_change",
    "user.disabled": "user_disabled",
    "theft": "refresh_reuse",
}
_REVOKE_REASONS: dict[str | None, str] = {
    None: "session",
    "others": "other_sessions",
    "all": "user",
}
_LABEL = re.compile(r"^[a-z][a-z0-9_.]{0,39}$")

_BACKENDS = {
    "MemoryStore": "memory",
    "SQLiteStore": "sqlite",
    "RedisStore": "redis",
    "PostgresStore": "postgres",
}


def label(value: str | None, default: str = "other") -> str:
    """``value`` as a metric label when it is a short code, else ``default`` (bounded
    cardinality: a label never carries user input)."""
    return value if value is not None and _LABEL.match(value) else default


def backend_name(store: object) -> str:
    """``sqlite``, ``redis``, ``postgres``, ``memory``, or an application store's class name."""
    name = type(store).__name__
    return _BACKENDS.get(name) or label(name.lower(), "custom")


class Histogram:
    """Bucket counts, sum and failures of one (store, operation)."""

    __slots__ = ("buckets", "errors", "sum", "timeouts")

    def __init__(self) -> None:
        self.buckets = [0] * (len(STORE_BUCKETS) + 1)  # per bucket, not cumulative
        self.sum = 0.0
        self.errors = 0
        self.timeouts = 0

    @property
    def count(self) -> int:
        """Calls observed."""
        return sum(self.buckets)

    def cumulative(self) -> list[int]:
        """Counts up to each bound, the last one being +Inf (Prometheus ``le`` buckets)."""
        out, running = [], 0
        for n in self.buckets:
            running += n
            out.append(running)
        return out


class StoreCalls:
    """Store call durations by (store, operation)."""

    def __init__(self) -> None:
        self.by_call: dict[tuple[str, str], Histogram] = {}

    def observer(self, store: str) -> CallObserver:
        """The :data:`~satchel.stores.deadline.CallObserver` for one backend."""
        by_call = self.by_call
        by_name: dict[str, Histogram] = {}  # this backend's, keyed by operation alone
        bounds = STORE_BUCKETS

        def observe(operation: Awaitable[Any], seconds: float, outcome: str) -> None:
            # On the request path when metrics are on: kept to a dict lookup and a bisect.
            try:
                name: str = operation.__name__  # type: ignore[attr-defined]
            except AttributeError:
                name = "call"
            hist = by_name.get(name)
            if hist is None:
                key = (store, label(name, "call"))
                hist = by_call.get(key) or by_call.setdefault(key, Histogram())
                by_name[name] = hist
            hist.buckets[bisect_left(bounds, seconds)] += 1
            hist.sum += seconds
            if outcome != "ok":
                if outcome == "timeout":
                    hist.timeouts += 1
                else:
                    hist.errors += 1

        return observe


class AuthEvents:
    """Sign-ins by outcome, throttled attempts, refreshes and revocations, from audit events."""

    def __init__(self) -> None:
        self.logins: dict[str, int] = {"success": 0, "failure": 0, "throttled": 0}
        self.login_failures: dict[str, int] = {}  # by error code
        self.throttled: dict[str, int] = {}  # by scope: account, ip
        self.revocations: dict[str, int] = {}  # by kind
        self.refresh_rotations = 0
        self.refresh_reuse = 0
        self.password_change_failures = 0
        self.dbsc: dict[str, int] = {}  # DBSC outcomes: registered, refreshed, wrong_key...
        self.dpop_failures: dict[str, int] = {}  # by reason: htu, ath, replay, ...

    def record(self, event: AuditEvent) -> None:
        """Count one audit event (unknown names are ignored)."""
        name = event.name
        if name == "login.success":
            self.logins["success"] += 1
        elif name == "login.failure":
            self.logins["failure"] += 1
            _bump(self.login_failures, label(event.reason))
        elif name == "throttled":
            self.logins["throttled"] += 1
            _bump(self.throttled, label(event.reason))
        elif name == "refresh":
            self.refresh_rotations += 1
        elif name == "revoke":
            _bump(self.revocations, _REVOKE_REASONS.get(event.reason, "other"))
        elif name == "password.change_failed":
            self.password_change_failures += 1
        elif name.startswith("dbsc."):
            _bump(self.dbsc, label(name.removeprefix("dbsc.")))
        elif name == "dpop.failure":
            _bump(self.dpop_failures, label(event.reason))
        if name == "theft":
            self.refresh_reuse += 1
        kind = _REVOCATION_KINDS.get(name)
        if kind is not None:
            _bump(self.revocations, kind)


def _bump(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


class Metrics:
    """Everything one server process counts; attach it to the :class:`Auth` it serves."""

    def __init__(self) -> None:
        self.store_calls = StoreCalls()
        self.events = AuthEvents()
        self.auth: Auth | None = None
        self.wrappers: list[DeadlineStore] = []

    def attach(self, auth: Auth) -> None:
        """Start counting ``auth``'s store calls and audit events (once per Auth)."""
        if self.auth is auth:
            return
        self.auth = auth
        chain_audit_hook(auth.audit, self.events)
        self.wrappers = deadline_wrappers(auth)
        for wrapper in self.wrappers:
            wrapper.observer = self.store_calls.observer(backend_name(wrapper.inner))

    def detach(self) -> None:
        """Stop timing store calls (the audit hook stays: it is cheap and harmless)."""
        for wrapper in self.wrappers:
            wrapper.observer = None
        self.wrappers = []


def chain_audit_hook(audit: AuditLog, events: AuthEvents) -> None:
    """Count every event of ``audit`` before its own hook (if any) sees it."""
    previous: AuditHook | None = audit.hook

    async def counting(event: AuditEvent) -> None:
        events.record(event)
        if previous is not None:
            await previous(event)

    audit.hook = counting


def deadline_wrappers(auth: Auth) -> list[DeadlineStore]:
    """The distinct :class:`DeadlineStore` wrappers ``auth``'s parts call through."""
    candidates: list[object] = []
    bounded = getattr(auth, "bounded", None)  # ConfiguredAuth keeps the wrapped Stores
    if bounded is not None:
        candidates += [bounded.sessions, bounded.users, bounded.keys]
    candidates.append(getattr(auth.users, "store", None))
    if auth.keys is not None:
        candidates.append(auth.keys.store)
    out: list[DeadlineStore] = []
    for candidate in candidates:
        if isinstance(candidate, DeadlineStore) and all(candidate is not w for w in out):
            out.append(candidate)
    return out

"""``/metrics`` in the Prometheus text format, through ``prometheus_client`` (``metrics`` extra).

Every value is read when Prometheus scrapes, from :class:`~satchel.ops.metrics.Metrics` and
from the counters the strategy and the revocation bus keep anyway, so serving metrics adds
nothing to a request. Each server has a registry of its own (never the library's global
one), with the process and platform collectors of ``prometheus_client``.

Labels carry codes only (outcome, kind, store, operation), never user input.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from satchel.ops.metrics import STORE_BUCKETS, Metrics

__all__ = ["CONTENT_TYPE_LATEST", "SatchelCollector", "make_registry", "render"]


def make_registry(metrics: Metrics) -> CollectorRegistry:
    """A registry with satchel's metrics and the process, platform and GC collectors."""
    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    registry.register(SatchelCollector(metrics))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The registry in the text exposition format (``CONTENT_TYPE_LATEST``)."""
    return generate_latest(registry)


def _counter(name: str, doc: str, labels: list[str] | None = None) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, labels=labels)


class SatchelCollector(Collector):
    """Turns :class:`Metrics` and the strategy's and bus's counters into metric families."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield from self._events()
        yield from self._stores()
        auth = self.metrics.auth
        if auth is not None:
            yield from self._cache(auth.strategy.counters)
            if auth.dbsc is not None:
                rejected = _counter(
                    "satchel_dbsc_bound_cookie_rejected",
                    "Requests of device-bound sessions without a live bound cookie (skipped: "
                    "the browser said why, in Secure-Session-Skipped).",
                    ["reason"],
                )
                for reason, n in sorted(auth.dbsc.rejected.items()):
                    rejected.add_metric([reason], n)
                yield rejected
            if auth.bus is not None:
                yield from self._bus(auth.bus)

    def _events(self) -> Iterator[Metric]:
        events = self.metrics.events
        logins = _counter("satchel_logins", "Sign-in attempts by outcome.", ["outcome"])
        for outcome, n in sorted(events.logins.items()):
            logins.add_metric([outcome], n)
        yield logins
        failures = _counter("satchel_login_failures", "Failed sign-ins by error code.", ["reason"])
        for reason, n in sorted(events.login_failures.items()):
            failures.add_metric([reason], n)
        yield failures
        throttled = _counter(
            "satchel_login_throttled",
            "Sign-in attempts refused by the failed-login limits, by scope.",
            ["scope"],
        )
        for scope, n in sorted(events.throttled.items()):
            throttled.add_metric([scope], n)
        yield throttled
        revocations = _counter(
            "satchel_revocations",
            "Credentials ended, by kind (logout, session, other_sessions, user, "
            "password_change, roles_change, user_disabled, refresh_reuse).",
            ["kind"],
        )
        for kind, n in sorted(events.revocations.items()):
            revocations.add_metric([kind], n)
        yield revocations
        rotations = _counter("satchel_refresh_rotations", "Refresh tokens rotated.")
        rotations.add_metric([], events.refresh_rotations)
        yield rotations
        reuse = _counter(
            "satchel_refresh_reuse_detected",
            "Retired refresh tokens presented again (the session family was ended).",
        )
        reuse.add_metric([], events.refresh_reuse)
        yield reuse
        changes = _counter(
            "satchel_password_change_failures", "Password changes refused (wrong current, weak)."
        )
        changes.add_metric([], events.password_change_failures)
        yield changes
        dbsc = _counter(
            "satchel_dbsc_events",
            "Device bound session outcomes (registered, refreshed, register_failed, "
            "refresh_failed, wrong_key).",
            ["event"],
        )
        for event, n in sorted(events.dbsc.items()):
            dbsc.add_metric([event], n)
        yield dbsc
        dpop = _counter(
            "satchel_dpop_failures",
            "DPoP proofs and key bindings refused, by reason (htm, htu, ath, iat, replay, ...).",
            ["reason"],
        )
        for reason, n in sorted(events.dpop_failures.items()):
            dpop.add_metric([reason], n)
        yield dpop

    def _stores(self) -> Iterator[Metric]:
        calls = self.metrics.store_calls.by_call
        hist = HistogramMetricFamily(
            "satchel_store_call_seconds",
            "Duration of store calls (each bounded by SATCHEL_STORE_TIMEOUT).",
            labels=["store", "operation"],
        )
        failed = _counter(
            "satchel_store_call_failures",
            "Store calls that failed (error) or hit the deadline (timeout).",
            ["store", "operation", "outcome"],
        )
        bounds = [*(_le(b) for b in STORE_BUCKETS), "+Inf"]
        for (store, operation), h in sorted(calls.items()):
            hist.add_metric(
                [store, operation], list(zip(bounds, h.cumulative(), strict=True)), h.sum
            )
            if h.errors:
                failed.add_metric([store, operation, "error"], h.errors)
            if h.timeouts:
                failed.add_metric([store, operation, "timeout"], h.timeouts)
        yield hist
        yield failed

    def _cache(self, counters: Any) -> Iterator[Metric]:
        hits = _counter(
            "satchel_cache_hits", "Credentials verified from this process's cache (no store read)."
        )
        hits.add_metric([], getattr(counters, "cache_hits", 0))
        yield hits
        misses = _counter(
            "satchel_cache_miss_reads",
            "Store reads made to verify a credential the cache did not answer "
            "(a miss reads the session and/or the user).",
        )
        misses.add_metric([], getattr(counters, "store_reads", 0))
        yield misses
        flushes = _counter(
            "satchel_cache_flushes", "Cache flushes after the revocation channel reconnected."
        )
        flushes.add_metric([], getattr(counters, "cache_flushes", 0))
        yield flushes
        received = _counter(
            "satchel_revocations_received", "Revocation events applied to this process's caches."
        )
        received.add_metric([], getattr(counters, "revocations_received", 0))
        yield received

    def _bus(self, bus: Any) -> Iterator[Metric]:
        kind = str(getattr(bus, "kind", type(bus).__name__.lower()))
        connected = GaugeMetricFamily(
            "satchel_revocation_bus_connected",
            "1 while the revocation channel is connected and trusted, else 0 (caches off).",
            labels=["kind"],
        )
        connected.add_metric([kind], 1.0 if bus.healthy else 0.0)
        yield connected
        alive_at = getattr(bus, "alive_at", None)
        if isinstance(alive_at, float):
            lag = GaugeMetricFamily(
                "satchel_revocation_bus_lag_seconds",
                "Seconds since the revocation channel last proved alive (subscription, "
                "message, ping or poll); grows while it stalls. +Inf before it ever connected.",
                labels=["kind"],
            )
            seconds = time.monotonic() - alive_at if alive_at > -math.inf else math.inf
            lag.add_metric([kind], seconds)
            yield lag
        counters = getattr(bus, "counters", None)
        if counters is None:
            return
        for field, doc in (
            ("published", "Revocation events this process sent."),
            ("publish_failures", "Revocation events that could not be sent (the caller got 503)."),
            ("received", "Revocation events received from other processes."),
            ("disconnects", "Times the revocation channel was lost."),
            ("connects", "Confirmed subscriptions to the revocation channel."),
        ):
            family = _counter(f"satchel_revocation_bus_{field}", doc, ["kind"])
            family.add_metric([kind], getattr(counters, field, 0))
            yield family


def _le(bound: float) -> str:
    return repr(float(bound))

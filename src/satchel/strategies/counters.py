"""Plain counters that tests and benchmarks read (no metrics library needed)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(slots=True)
class Counters:
    """Per-process counters of what authentication cost."""

    store_reads: int = 0  # session/user reads made while verifying a request
    cache_hits: int = 0  # requests answered from the local cache
    revocations_received: int = 0  # events applied from the revocation bus
    cache_flushes: int = 0  # resets after a bus reconnect

    def snapshot(self) -> dict[str, int]:
        """A copy as a dict."""
        return asdict(self)

    def reset(self) -> None:
        """Zero every counter."""
        self.store_reads = self.cache_hits = 0
        self.revocations_received = self.cache_flushes = 0

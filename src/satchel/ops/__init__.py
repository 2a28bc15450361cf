"""Running satchel in production: metrics, readiness, logs, start-up checks, shutdown.

- :mod:`~satchel.ops.metrics` — what the server counts (no metrics library needed);
  :mod:`~satchel.ops.exposition` — the Prometheus format (``prometheus_client``).
- :mod:`~satchel.ops.readiness` — each store and the revocation channel, now.
- :mod:`~satchel.ops.logging` — request ids, JSON lines, secrets scrubbed.
- :mod:`~satchel.ops.checks` — the configuration checked at start.
- :mod:`~satchel.ops.shutdown` — flushing pending writes before the stores close.

None of them imports a web framework; the reference server wires them in
(:mod:`satchel.server.ops_routes`, :mod:`satchel.server.runner`). See docs/operations.md.
"""

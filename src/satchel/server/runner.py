"""Serving the reference server with uvicorn: listeners, logs, checks, graceful shutdown.

- The configuration is checked first (:mod:`satchel.ops.checks`): errors stop the start,
  warnings are logged.
- One uvicorn server listens on the main port and, with ``SATCHEL_METRICS_PORT``, on the
  metrics port as well (one event loop, one shutdown for both).
- Logs go to standard error in ``SATCHEL_LOG_FORMAT`` (text or JSON lines).
- SIGTERM (or Ctrl-C) stops accepting connections at once; in-flight requests get
  ``SATCHEL_SHUTDOWN_TIMEOUT`` seconds to finish, then are cut; the lifespan then flushes
  pending writes (:func:`satchel.ops.shutdown.drain`) and closes the stores.
"""

from __future__ import annotations

import asyncio
import logging
import logging.config
import socket
from typing import TYPE_CHECKING

from satchel.ops.checks import ConfigProblems, check_all, errors
from satchel.ops.logging import log_config

if TYPE_CHECKING:
    from satchel.config.settings import Settings

logger = logging.getLogger("satchel.server")


def listen(host: str, port: int) -> socket.socket:
    """A bound TCP socket on ``host:port`` (``SO_REUSEADDR``); raises :class:`OSError`."""
    family, kind, proto, _name, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


async def preflight(settings: Settings, *, checked: bool = False) -> None:
    """Check the configuration (unless ``checked``: the caller did and reported it), then
    build and close an :class:`Auth` once, so a bad store URL, an unreachable store or a key
    mismatch fails here with a clean error instead of a trace from the server's lifespan."""
    from satchel.config.build import build_auth

    if not checked:
        problems = await check_all(settings)
        for problem in problems:
            if problem.severity == "warning":
                logger.warning("configuration: %s", problem.line())
        if errors(problems):
            raise ConfigProblems(problems)
    auth = await build_auth(settings)
    await auth.close()


def run(settings: Settings, *, checked: bool = False, access_log: bool = False) -> None:
    """Serve the reference server in this process until SIGTERM or Ctrl-C.

    ``access_log`` turns on uvicorn's one line per request; it is off by default because it
    costs more per request than authenticating (measured in docs/benchmarks.md).

    Configuration and store errors are raised (as :class:`~satchel.errors.SatchelError`;
    :class:`~satchel.ops.checks.ConfigProblems` lists every configuration error) before any
    socket is opened; a port in use raises :class:`OSError`.
    """
    import uvicorn

    from satchel.server.app import create_app

    logging.config.dictConfig(log_config(settings.log_format, settings.log_level))
    asyncio.run(preflight(settings, checked=checked))
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        workers=1,
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=",".join(settings.trusted_proxies) or None,
        server_header=False,
        log_level=settings.log_level,
        log_config=log_config(settings.log_format, settings.log_level),
        lifespan="on",
        access_log=access_log,
        timeout_graceful_shutdown=max(1, round(settings.shutdown_timeout)),
    )
    sockets = [listen(settings.host, settings.port)]
    try:
        if settings.metrics_port is not None:
            sockets.append(listen(settings.metrics_host, settings.metrics_port))
            logger.info(
                "metrics on http://%s:%d/metrics", settings.metrics_host, settings.metrics_port
            )
        uvicorn.Server(config).run(sockets=sockets)
    finally:
        for sock in sockets:
            sock.close()

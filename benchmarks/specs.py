"""What an end-to-end app is: how uvicorn finds it, and the credential wrk sends to it.

Shared by :mod:`benchmarks.e2e` (which runs the apps) and :mod:`benchmarks.satchel_side`
(which describes satchel's own apps), so neither has to import the other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from benchmarks.common import Settings


@dataclass(frozen=True, slots=True)
class Credential:
    """Headers that carry a logged-in credential, as wrk will send them."""

    headers: tuple[tuple[str, str], ...] = ()

    @property
    def size(self) -> int:
        """Bytes these headers add to each request on the wire (name, ': ', value, CRLF)."""
        return sum(len(k) + 2 + len(v) + 2 for k, v in self.headers)


Prepare = Callable[[str, "AppSpec", Settings], Credential]


@dataclass(frozen=True, slots=True)
class AppSpec:
    """One app to load: how uvicorn finds it, how to log in to it, and how it is labelled."""

    name: str
    kind: str  # baseline | peer | satchel
    framework: str  # asgi | starlette | fastapi
    target: str  # module:attribute for uvicorn (or a label when ``command`` is given)
    prepare: Prepare | None = None
    env: dict[str, str] = field(default_factory=dict)
    factory: bool = False
    prepare_before_start: bool = False  # log in through the library before the server starts
    in_quick: bool = True  # False: measured in full runs only (keeps --quick under a minute)
    unavailable: str = ""  # why it cannot run in this environment (skipped with that note)
    path: str = "/me"  # the protected route wrk loads
    # A whole server command instead of uvicorn + target; "{port}" is replaced by the port.
    command: tuple[str, ...] = ()

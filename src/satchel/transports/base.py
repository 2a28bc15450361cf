"""How a credential rides on a request: the transport interface.

Transports read raw ASGI-style headers (a sequence of ``(name, value)`` byte pairs with
lower-case names), so they work under any framework and under WSGI after a trivial
conversion. They never read the query string or the body.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from satchel.errors import AuthenticationError

RawHeaders = Sequence[tuple[bytes, bytes]]
HeaderPairs = list[tuple[str, str]]


@dataclass(frozen=True, slots=True, repr=False)
class IssuedCredentials:
    """What a login or refresh hands to the client. Never logged, never in ``repr``.

    ``remember`` is the user's "remember this device": only then does the cookie transport
    make its cookies outlive the browser (``Max-Age``); otherwise they are browser-session
    cookies, gone when the browser closes. Either way the credential itself expires when
    ``expires_in`` (and the server's time-outs) say.
    """

    access_token: str
    expires_in: int
    refresh_token: str | None = None
    refresh_expires_in: int | None = None
    session_id: str | None = None
    remember: bool = False

    def __repr__(self) -> str:
        has_refresh = self.refresh_token is not None
        return (
            f"IssuedCredentials(expires_in={self.expires_in}, refresh={has_refresh}, "
            f"remember={self.remember})"
        )


def header_values(headers: RawHeaders, name: bytes) -> list[bytes]:
    """All values of header ``name`` (lower-case bytes)."""
    return [value for key, value in headers if key == name]


class Transport(ABC):
    """Carries a credential between client and server."""

    #: Short stable name: ``"cookie"`` or ``"bearer"``.
    name: str

    @abstractmethod
    def extract(self, headers: RawHeaders) -> str | None:
        """The access credential in this request, or None.

        Raises :class:`satchel.errors.InvalidCredential` when the carrier itself is malformed
        or ambiguous (two cookies of our name, two Authorization headers...).
        """

    def extract_refresh(self, headers: RawHeaders) -> str | None:
        """The refresh credential carried by this transport, if it carries one."""
        return None

    @abstractmethod
    def login_headers(self, issued: IssuedCredentials) -> HeaderPairs:
        """Response headers that hand ``issued`` to the client (may be empty)."""

    @abstractmethod
    def logout_headers(self) -> HeaderPairs:
        """Response headers that make the client forget the credential."""

    def challenge_headers(self, error: AuthenticationError | None) -> HeaderPairs:
        """Headers for a 401 response (``WWW-Authenticate`` for bearer)."""
        return []

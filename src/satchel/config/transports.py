"""The transports of :class:`Settings`, in precedence order."""

from __future__ import annotations

from satchel.config.settings import Settings
from satchel.transports.base import Transport

__all__ = ["build_transports"]


def build_transports(settings: Settings) -> list[Transport]:
    """The transports named in ``settings.transports``, in that (precedence) order."""
    from satchel.transports.bearer import BearerTransport
    from satchel.transports.cookie import CookieTransport

    out: list[Transport] = []
    for name in settings.transports:
        if name == "cookie":
            out.append(
                CookieTransport(
                    settings.cookie_name,
                    secure=settings.cookie_secure,
                    same_site=settings.cookie_samesite,
                    domain=settings.cookie_domain,
                )
            )
        else:
            out.append(BearerTransport(realm=settings.issuer, dpop=settings.dpop))
    return out

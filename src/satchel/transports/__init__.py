"""Transports: how a credential rides (cookie, bearer)."""

from satchel.transports.base import IssuedCredentials, RawHeaders, Transport
from satchel.transports.bearer import BearerTransport
from satchel.transports.cookie import CookieTransport

__all__ = ["BearerTransport", "CookieTransport", "IssuedCredentials", "RawHeaders", "Transport"]

"""Transports: how a credential rides (cookie, bearer), and the CSRF protection that the
cookie transport needs."""

from satchel.transports.base import IssuedCredentials, RawHeaders, Transport
from satchel.transports.bearer import BearerTransport
from satchel.transports.cookie import CookieTransport
from satchel.transports.csrf import CSRFProtect

__all__ = [
    "BearerTransport",
    "CSRFProtect",
    "CookieTransport",
    "IssuedCredentials",
    "RawHeaders",
    "Transport",
]

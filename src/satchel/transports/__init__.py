"""Transports: how a credential rides (cookie, bearer)."""

from satchel.transports.base import IssuedCredentials, RawHeaders, Transport

__all__ = ["IssuedCredentials", "RawHeaders", "Transport"]

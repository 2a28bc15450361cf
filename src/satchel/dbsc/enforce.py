"""The one check a bound DBSC session adds to every request (kept light: the hot path
imports it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from satchel.identity import Identity
from satchel.transports.base import HeaderPairs, RawHeaders

if TYPE_CHECKING:
    from satchel.dbsc.binding import DeviceBinding


def require_bound(
    binding: DeviceBinding | None, identity: Identity, transport: str, headers: RawHeaders
) -> None:
    """Refuse a cookie request of a bound session without its live bound cookie.

    Only a session that registered a device key is affected, and only while DBSC is on:
    with ``SATCHEL_DBSC=off`` nobody can renew a bound cookie, so none is asked for.
    Raises :class:`~satchel.dbsc.errors.DeviceBindingRequired` (401).
    """
    if binding is not None and transport == "cookie" and identity.device_key is not None:
        binding.require(identity, headers)


async def offer_binding(binding: DeviceBinding | None, identity: Identity) -> HeaderPairs:
    """``Secure-Session-Registration`` for the new cookie session of ``identity`` (nothing
    when DBSC is off); added to every cookie sign-in's response."""
    if binding is None:
        return []
    return await binding.offer(identity)

"""The client's address, believing ``X-Forwarded-For`` only from configured trusted proxies.

Anyone can send ``X-Forwarded-For``; trusting it from the open internet lets an attacker pick
the address every per-IP limit is keyed on (P02). The header is read only when the peer that
connected to us is a trusted proxy, and then from the right: each hop that is itself a trusted
proxy is skipped, and the first address that is not is the client.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from satchel.errors import ConfigurationError
from satchel.transports.base import RawHeaders

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: At most this many hops of ``X-Forwarded-For`` are looked at.
MAX_HOPS = 32
_MAX_HEADER = 4096


def parse_networks(entries: Iterable[str]) -> tuple[IPNetwork, ...]:
    """Trusted proxies as networks (``10.0.0.1``, ``10.0.0.0/8``, ``::1``); bad entries raise."""
    out: list[IPNetwork] = []
    for entry in entries:
        try:
            out.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ConfigurationError(
                "Each trusted proxy must be an IP address or CIDR network."
            ) from None
    return tuple(out)


def parse_ip(text: str) -> IPAddress | None:
    """An IP address from a header hop or peer string; None when it is not one.

    Accepts ``[v6]`` and ``[v6]:port``/``v4:port`` spellings some proxies emit.
    """
    value = text.strip()
    if not value or len(value) > 64:
        return None
    if value.startswith("["):
        end = value.find("]")
        if end == -1:
            return None
        value = value[1:end]
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress, proxies: Sequence[IPNetwork]) -> bool:
    return any(address.version == net.version and address in net for net in proxies)


def client_ip(
    peer: str | None, headers: RawHeaders, trusted_proxies: Sequence[IPNetwork]
) -> str | None:
    """The client address of a request whose TCP peer is ``peer``.

    ``X-Forwarded-For`` is used only when ``peer`` is in ``trusted_proxies``; every header
    line counts (they concatenate, RFC 9110 §5.3). A malformed hop stops the walk at the last
    trustworthy address, so garbage in the header can never choose the result.
    """
    if peer is None:
        return None
    address = parse_ip(peer)
    if address is None:
        return peer[:64]
    if not trusted_proxies or not _trusted(address, trusted_proxies):
        return str(address)
    raw = b",".join(value for key, value in headers if key == b"x-forwarded-for")
    if not raw or len(raw) > _MAX_HEADER:
        return str(address)
    hops = raw.decode("latin-1").split(",")[-MAX_HOPS:]
    current = address
    for hop in reversed(hops):
        parsed = parse_ip(hop)
        if parsed is None:
            return str(current)
        current = parsed
        if not _trusted(parsed, trusted_proxies):
            return str(parsed)
    return str(current)

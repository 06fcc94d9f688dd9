"""The SSRF guard: only public addresses are contacted (``allow_private=False``, the default).

Where the check happens and why it leaves no DNS-rebinding window: ``docs/download.md`` ("SSRF guard").
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable


class BlockedAddressError(OSError):
    """A host resolved only to addresses the SSRF guard refuses."""


Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# IPv6 forms that carry an IPv4 address a connection may end up at (translators, tunnels, dual-stack
# sockets): the embedded address is checked as if it had been given.
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d (RFC 4291)
_IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # SIIT ::ffff:0:a.b.c.d (RFC 2765)
_NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215, local use: not globally reachable
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")  # RFC 3056
_TEREDO = ipaddress.ip_network("2001::/32")  # RFC 4380


def embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses embedded in ``ip`` by a translation or tunnelling form (none for plain IPv6).

    IPv4-mapped (``::ffff:a.b.c.d``), IPv4-compatible (``::a.b.c.d``), IPv4-translated
    (``::ffff:0:a.b.c.d``), NAT64 well-known prefix (``64:ff9b::a.b.c.d``), 6to4 (``2002:AABB:CCDD::``)
    and Teredo (server and de-obfuscated client). ``64:ff9b:1::/48`` is refused as a whole instead: the
    position of its IPv4 part depends on the operator's prefix length.
    """
    if ip.ipv4_mapped is not None:
        return (ip.ipv4_mapped,)
    if ip in _IPV4_COMPATIBLE or ip in _IPV4_TRANSLATED or ip in _NAT64_WELL_KNOWN:
        return (ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF),)
    if ip in _SIX_TO_FOUR:
        return (ip.sixtofour,)
    if ip in _TEREDO:
        return ip.teredo
    return ()


def address_allowed(address: str, allowed_networks: Iterable[Network] = ()) -> bool:
    """True for public unicast addresses, or addresses inside ``allowed_networks``.

    An IPv6 address embedding IPv4 addresses (:func:`embedded_ipv4`) is allowed only if each of them is.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    networks = tuple(allowed_networks)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # a dual-stack socket connects to the IPv4 address itself
    if any(ip.version == net.version and ip in net for net in networks):
        return True
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _NAT64_LOCAL:
            return False
        if not all(address_allowed(str(inner), networks) for inner in embedded_ipv4(ip)):
            return False
    return ip.is_global and not ip.is_multicast


def ip_literal(host: str) -> str | None:
    """The normalised address if ``host`` is an IP literal (``[::1]``, ``fe80::1%eth0``...), else None."""
    try:
        return str(ipaddress.ip_address(host.strip("[]").split("%", 1)[0]))
    except ValueError:
        return None


try:
    from aiohttp.abc import AbstractResolver as _AbstractResolver
except ImportError:  # the images extra is missing: the step says so when it runs
    _AbstractResolver = object


class GuardedResolver(_AbstractResolver):
    """An aiohttp resolver that drops the addresses ``allow(address)`` refuses.

    aiohttp connects to exactly the addresses its resolver returns, so filtering here, rather than
    looking the host up a second time to check it, leaves no window for DNS rebinding.
    """

    def __init__(self, allow: Callable[[str], bool], inner=None):
        import aiohttp

        self._inner = inner if inner is not None else aiohttp.DefaultResolver()
        self._allow = allow

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET):
        answers = await self._inner.resolve(host, port, family)
        allowed = [a for a in answers if self._allow(a["host"])]
        if not allowed:
            refused = sorted({a["host"] for a in answers})
            raise BlockedAddressError(f"{host} resolves to non-public address(es) {', '.join(refused)}")
        return allowed

    async def close(self) -> None:
        await self._inner.close()

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


def address_allowed(address: str, allowed_networks: Iterable[Network] = ()) -> bool:
    """True for public unicast addresses, or addresses inside ``allowed_networks``."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip.version == net.version and ip in net for net in allowed_networks):
        return True
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

    def __init__(self, allow: Callable[[str], bool]):
        import aiohttp

        self._inner = aiohttp.DefaultResolver()
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

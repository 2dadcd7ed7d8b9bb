"""The client's address behind reverse proxies, free of I/O.

A proxy in front of the node makes every connection come from the proxy's
address; it names the client in a ``Forwarded`` header (RFC 7239, ``for=``) or
an ``X-Forwarded-For`` header, each proxy on the way appending the address it
saw. Anyone can send these headers, so they are read only when the peer is a
trusted proxy (``server.trusted_proxies``), and then from the right: the
right-most address that is not itself a trusted proxy is the client's. When
both headers are sent, ``Forwarded`` is read.

An entry that is not an IP address (``unknown``, an obfuscated ``_name``, a
malformed value) ends the walk: the address of the trusted proxy that sent it is
used, so nobody can name an address of their choosing through it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

__all__ = ["TrustedProxies", "normalize_address"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def normalize_address(text: str) -> str | None:
    """``text`` as an IP address in canonical form (an IPv4-mapped IPv6 address as
    IPv4), or ``None`` if it is not one."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def _node_address(node: str) -> str | None:
    """The IP address of a ``Forwarded`` node (``192.0.2.1``, ``192.0.2.1:80``,
    ``"[2001:db8::1]:80"``) or an ``X-Forwarded-For`` entry."""
    node = node.strip().strip('"').strip()
    if node.startswith("["):
        host, bracket, _ = node[1:].partition("]")
        return normalize_address(host) if bracket else None
    if node.count(":") == 1:
        node = node.partition(":")[0]
    return normalize_address(node)


def _forwarded_nodes(values: Sequence[bytes]) -> list[str]:
    """The ``for=`` values of every element of the ``Forwarded`` headers, in order
    (an element without ``for=`` gives ``""``, which is no address)."""
    nodes = []
    for value in values:
        for element in value.decode("latin-1").split(","):
            found = ""
            for pair in element.split(";"):
                name, equals, text = pair.partition("=")
                if equals and name.strip().lower() == "for":
                    found = text
            nodes.append(found)
    return nodes


def _x_forwarded_nodes(values: Sequence[bytes]) -> list[str]:
    return [item for value in values for item in value.decode("latin-1").split(",")]


class TrustedProxies:
    """The proxies whose forwarding headers are believed (addresses and networks)."""

    __slots__ = ("_networks",)

    def __init__(self, networks: Iterable[str] = ()) -> None:
        """Raises ``ValueError`` for an entry that is not an address or network."""
        self._networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(text, strict=False) for text in networks
        )

    def __bool__(self) -> bool:
        return bool(self._networks)

    def trusts(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._networks)

    def client_address(
        self, peer: str, forwarded: Sequence[bytes] = (), x_forwarded_for: Sequence[bytes] = ()
    ) -> str:
        """The client's address for a connection from ``peer`` that sent these
        ``Forwarded`` and ``X-Forwarded-For`` header values (in the order received)."""
        address = normalize_address(peer) or peer
        if not self._networks or not self.trusts(address):
            return address
        nodes = _forwarded_nodes(forwarded) if forwarded else _x_forwarded_nodes(x_forwarded_for)
        for node in reversed(nodes):
            hop = _node_address(node)
            if hop is None:
                return address
            address = hop
            if not self.trusts(hop):
                return hop
        return address

"""Who the client is: the socket peer, unless that peer is a proxy we trust to say who it forwarded for.

A client can write any X-Forwarded-For it likes, so the header is read only when the peer is a trusted proxy,
and then from the right: each trusted hop appended the address it received from, so the right-most address that
is not itself a trusted proxy is the first one nobody we trust could have invented.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

from quart import Request

Address = IPv4Address | IPv6Address
UNKNOWN = "unknown"  # no socket peer (a unix socket): all such requests share one count


class ClientAddress:
    def __init__(self, trusted_proxies: Sequence[IPv4Network | IPv6Network]) -> None:
        self._trusted = tuple(trusted_proxies)

    def __call__(self, request: Request) -> str:
        client = request.scope.get("client")
        peer = _parse(client[0]) if client else None
        if peer is None:
            return UNKNOWN
        if not self._is_trusted(peer):
            return str(peer)
        return str(self._forwarded_for(request, peer))

    def _forwarded_for(self, request: Request, peer: Address) -> Address:
        """Walk X-Forwarded-For from the right past trusted hops; stop at the first entry that is no address."""
        hops = [hop for value in request.headers.getlist("X-Forwarded-For") for hop in value.split(",")]
        nearest = peer
        for text in reversed(hops):
            hop = _parse(text)
            if hop is None:
                break
            nearest = hop
            if not self._is_trusted(hop):
                break
        return nearest

    def _is_trusted(self, address: Address) -> bool:
        return any(address in network for network in self._trusted)


def _parse(text: str) -> Address | None:
    """An address as proxies write it: bare, `[v6]`, or with a port (`1.2.3.4:5678`, `[v6]:443`)."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        return ip_address(text)
    except ValueError:
        return None

"""Which network addresses kbchat may read web pages from: public ones, and the private ones the
owner allowed (setting `intranet_addresses`). This stops server-side request forgery: a web address
typed into the app, or a link or redirect on a crawled site, that points at this computer
(127.0.0.1), the office network (10.x, 192.168.x) or a cloud's metadata service (169.254.169.254)
is refused instead of fetched.

The check runs on the addresses a host name resolves to, for every request (each redirect is one),
and again on the connection itself, which goes to the address that was checked: a name that
resolves to a public address for the check and a private one a moment later (DNS rebinding)
still never reaches the private one.

    >>> blocked("169.254.169.254", ())
    'a link-local address (where cloud servers keep their metadata service)'
    >>> blocked("10.0.0.5", ("10.0.0.0/8",)) is None
    True
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from kb.errors import BadInput

resolve = socket.getaddrinfo  # the resolver (a test maps its own host names here)
ALL = "all"  # the intranet_addresses entry that allows every private address


def blocked(ip: str, allowed: tuple[str, ...] | list[str]) -> str | None:
    """Why kbchat must not connect to `ip`, in words; None when it may."""
    address = ipaddress.ip_address(ip.split("%", 1)[0])  # drop an IPv6 zone (fe80::1%eth0)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
    if address.is_global and not address.is_multicast:
        return None
    if ALL in allowed or any(address in network for network in _networks(allowed)):
        return None
    if address.is_loopback or address.is_unspecified:  # 0.0.0.0 reaches this computer too
        return "this computer's own address"
    if address.is_link_local:
        return "a link-local address (where cloud servers keep their metadata service)"
    if address.is_private:
        return "a private network address"
    if address.is_multicast:
        return "a multicast address"
    return "an address that is not on the public internet"


def check_url(url: str, allowed: tuple[str, ...] | list[str]) -> None:
    """Refuse `url` when its host is, or resolves to, an address kbchat may not read (BadInput)."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        return  # requests reports the incomplete address itself
    for ip in addresses(host, parts.port or (443 if parts.scheme == "https" else 80)):
        reason = blocked(ip, allowed)
        if reason:
            raise refusal(host, ip, reason)


def addresses(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (an unknown name is left for the connection to report)."""
    try:
        return list(dict.fromkeys(info[4][0] for info in resolve(host, port, type=socket.SOCK_STREAM)))
    except (socket.gaierror, UnicodeError):
        return []


def refusal(host: str, ip: str, reason: str) -> BadInput:
    where = host if host == ip else f"{host} ({ip})"
    return BadInput(
        f"kbchat does not read {where}: it is {reason}, and web pages are read only from public addresses. "
        "To read pages on your own network (an intranet), add the address or network to the setting "
        f"intranet_addresses, e.g. kbchat settings --set intranet_addresses={ip}")


def _networks(allowed) -> list:
    out = []
    for entry in allowed:
        try:
            out.append(ipaddress.ip_network(str(entry).strip(), strict=False))
        except ValueError:
            continue  # a host name or a typo: Settings validation names it
    return out


def session(allowed: tuple[str, ...] | list[str]) -> requests.Session:
    """A requests session that refuses blocked addresses on every request and connection."""
    s = requests.Session()
    adapter = GuardedAdapter(tuple(allowed))
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    return s


class GuardedAdapter(HTTPAdapter):
    """Checks each request's URL (so each redirect) and makes connections only to checked addresses."""

    def __init__(self, allowed: tuple[str, ...]):
        self.allowed = allowed
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": _guarded(HTTPConnection, self.allowed)}),
            "https": type("GuardedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": _guarded(HTTPSConnection, self.allowed)}),
        }

    def send(self, request, *args, **kwargs):
        check_url(request.url, self.allowed)  # every hop of a redirect comes through here, proxied or not
        return super().send(request, *args, **kwargs)


def _guarded(base: type, allowed: tuple[str, ...]) -> type:
    """A urllib3 connection class that connects only to a checked address of its host."""

    class Guarded(base):
        def _new_conn(self):
            host = self._dns_host
            found = addresses(host, self.port)
            for ip in found:
                reason = blocked(ip, allowed)
                if reason:
                    raise refusal(host, ip, reason)
            if found:
                self._dns_host = found[0]  # connect to the address just checked, not to a new lookup
            try:
                return super()._new_conn()
            finally:
                self._dns_host = host

    Guarded.__name__ = f"Guarded{base.__name__}"
    return Guarded

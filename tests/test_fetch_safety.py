"""Server-side request forgery: kbchat reads web pages only from public addresses unless the owner
allows an intranet (setting intranet_addresses), checked after name resolution, on every redirect
and on the connection itself.

No test here sends a packet outside loopback. Host names are resolved by a stub (kb.addresses.resolve)
that maps test names to private and metadata addresses, and every socket connection goes through a
guard that fails the test if it is aimed anywhere but 127.0.0.1 or ::1."""

from __future__ import annotations

import ipaddress
import json
import socket

import pytest

from kb import addresses
from kb.errors import BadInput
from kb.settings import Settings

NAMES = {  # what the stub resolver answers
    "intranet.test": ["10.0.0.5"],
    "metadata.test": ["169.254.169.254"],
    "ula.test": ["fd00::7"],
    "mixed.test": ["93.184.216.34", "192.168.1.20"],  # one public, one private: refused
    "public.test": ["93.184.216.34"],
}
attempts: list = []  # every address a socket tried to connect to


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """The resolver stub, and a connection layer that fails the test on any non-loopback address."""
    real_connect = socket.socket.connect
    attempts.clear()

    def resolve(host, port, *args, **kwargs):
        if host in NAMES:
            return [(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
                    for ip in NAMES[host]]
        if host in ("localhost", "127.0.0.1", "::1") or _numeric(host):
            return socket.getaddrinfo(host, port, *args, flags=socket.AI_NUMERICHOST if host != "localhost" else 0,
                                      **{k: v for k, v in kwargs.items() if k != "flags"})
        raise socket.gaierror(socket.EAI_NONAME, "unknown test host")  # never a real DNS query

    def connect(self, address):
        attempts.append(address[0])
        if not ipaddress.ip_address(address[0].split("%")[0]).is_loopback:
            pytest.fail(f"a connection to {address[0]} was attempted")
        return real_connect(self, address)

    monkeypatch.setattr(addresses, "resolve", resolve)
    monkeypatch.setattr(socket.socket, "connect", connect)


def _numeric(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False


@pytest.mark.parametrize("ip, reason", [
    ("127.0.0.1", "this computer's own address"),
    ("::1", "this computer's own address"),
    ("10.1.2.3", "a private network address"),
    ("172.16.0.9", "a private network address"),
    ("192.168.0.1", "a private network address"),
    ("fd00::7", "a private network address"),
    ("169.254.169.254", "a link-local address (where cloud servers keep their metadata service)"),
    ("fe80::1", "a link-local address (where cloud servers keep their metadata service)"),
    ("::ffff:169.254.169.254", "a link-local address (where cloud servers keep their metadata service)"),
    ("100.64.0.1", "an address that is not on the public internet"),  # carrier-grade NAT
    ("0.0.0.0", "this computer's own address"),
    ("224.0.0.1", "a multicast address"),
    ("93.184.216.34", None),
    ("2606:4700::1111", None),
])
def test_only_public_addresses_are_read_by_default(ip, reason):
    assert addresses.blocked(ip, ()) == reason


def test_the_owner_can_allow_intranet_addresses_and_networks():
    assert addresses.blocked("10.0.0.5", ("10.0.0.5",)) is None
    assert addresses.blocked("192.168.1.77", ("192.168.1.0/24",)) is None
    assert addresses.blocked("192.168.2.77", ("192.168.1.0/24",)) == "a private network address"
    assert addresses.blocked("169.254.169.254", ("all",)) is None
    with pytest.raises(BadInput, match="Intranet address 'intranet' must be an address like 10.0.0.5, a network"):
        Settings(intranet_addresses=("intranet",))


@pytest.mark.parametrize("url, where, reason", [
    ("http://10.0.0.5/wiki", "10.0.0.5", "a private network address"),
    ("http://intranet.test/wiki", "intranet.test (10.0.0.5)", "a private network address"),
    ("http://metadata.test/latest/meta-data/", "metadata.test (169.254.169.254)", "a link-local address"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254", "a link-local address"),
    ("http://ula.test/", "ula.test (fd00::7)", "a private network address"),
    ("http://mixed.test/", "mixed.test (192.168.1.20)", "a private network address"),
    ("http://[::ffff:10.0.0.1]/", "::ffff:10.0.0.1", "a private network address"),
])
def test_a_private_or_metadata_address_is_refused_with_what_to_do(kbchat, url, where, reason):
    result = kbchat("ingest", url)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"kbchat does not read {where}: it is {reason}" in " ".join(result.output.split())
    assert "setting intranet_addresses" in " ".join(result.output.split())
    assert not attempts  # refused before any connection


def test_loopback_is_refused_until_the_owner_allows_it(kbchat, site):
    result = kbchat("ingest", f"{site}/hours.html")
    assert result.exit_code == 1 and "it is this computer's own address" in " ".join(result.output.split())
    assert not attempts
    assert kbchat("settings", "--set", "intranet_addresses=127.0.0.1").exit_code == 0
    result = kbchat("ingest", f"{site}/hours.html")
    assert result.exit_code == 0, result.output
    assert attempts and set(attempts) == {"127.0.0.1"}


def test_a_redirect_from_an_allowed_page_to_a_private_address_is_refused(kbchat, kb_dir, site):
    assert kbchat("settings", "--set", "intranet_addresses=127.0.0.1").exit_code == 0
    for target in ("http://intranet.test/secret", "http://169.254.169.254/latest/meta-data/"):
        result = kbchat("ingest", "--json", f"{site}/go?to={target}")
        [row] = json.loads(result.stdout)
        assert row["status"] == "failed" and "kbchat does not read" in row["reason"], row
        assert set(attempts) == {"127.0.0.1"}  # the loopback page answered; the redirect went nowhere
    from kb.store import Store

    with Store(kb_dir) as store:
        assert not store.sources()  # nothing half-written


def test_a_name_that_changes_its_address_after_the_check_is_still_refused(monkeypatch):
    """DNS rebinding: public when the request is checked, private when the connection is made."""
    from kb.web import fetch

    answers = iter([["93.184.216.34"], ["10.0.0.5"]])
    real = addresses.resolve

    def rebinding(host, port, *args, **kwargs):
        if host == "rebind.test":
            NAMES["rebind.test"] = next(answers)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(addresses, "resolve", rebinding)
    monkeypatch.setitem(NAMES, "rebind.test", [])
    with pytest.raises(BadInput, match=r"kbchat does not read rebind.test \(10.0.0.5\): it is a private network address"):
        fetch("http://rebind.test/", Settings())
    assert not attempts

"""tenantry.dns and its settings, against the real test DNS server (tests/dns.py)."""

from __future__ import annotations

import time

import pytest
from pydantic import ValidationError

from tenantry.config import Nameserver, load_settings
from tenantry.dns import TxtResolver
from tenantry.errors import Unavailable
from tests.dns import LocalDns, Zone


def test_name_servers_are_addresses_with_optional_ports() -> None:
    settings = load_settings(dns_nameservers=" 127.0.0.1:5353, [::1]:53 ,10.0.0.2,::1")
    assert settings.nameservers == (
        Nameserver("127.0.0.1", 5353),
        Nameserver("::1", 53),
        Nameserver("10.0.0.2", 53),
        Nameserver("::1", 53),
    )
    assert load_settings(dns_nameservers="").nameservers == ()


@pytest.mark.parametrize(
    "value", ["dns.example.com", "127.0.0.1:0", "127.0.0.1:70000", "127.0.0.1:x", "[::1]:"]
)
def test_a_bad_name_server_is_refused_at_start(value: str) -> None:
    with pytest.raises(ValidationError, match="TENANTRY_DNS_NAMESERVERS"):
        load_settings(dns_nameservers=value)


@pytest.mark.parametrize("timeout", [0, -1, 61])
def test_the_timeout_is_bounded(timeout: float) -> None:
    with pytest.raises(ValidationError):
        load_settings(dns_timeout_seconds=timeout)


async def test_txt_strings_are_answered_joined_and_absence_is_empty(
    local_dns: LocalDns, dns_zone: Zone
) -> None:
    resolver = TxtResolver((Nameserver("127.0.0.1", local_dns.port),), 2.0)
    long_value = "v" * 300  # more than one 255-byte string in one record
    dns_zone.txt("_tenantry-challenge.example.com", "one", long_value)
    dns_zone.txt("_tenantry-challenge.example.org")
    assert await resolver.txt("_tenantry-challenge.EXAMPLE.com") == ["one", long_value]
    assert await resolver.txt("_tenantry-challenge.example.org") == []  # NOERROR, no TXT
    assert await resolver.txt("_tenantry-challenge.example.net") == []  # NXDOMAIN


async def test_a_silent_name_server_is_unavailable_within_the_timeout(
    local_dns: LocalDns,
) -> None:
    resolver = TxtResolver((Nameserver("127.0.0.1", local_dns.silent_port),), 0.4)
    started = time.monotonic()
    with pytest.raises(Unavailable, match=r"did not answer within 0\.4 s"):
        await resolver.txt("_tenantry-challenge.example.com")
    assert time.monotonic() - started < 2.0

"""One slapd for the whole session (tests/ldap_server.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import ldap_server


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ldap_server.Slapd]:
    server = ldap_server.start(tmp_path_factory.mktemp("slapd"))
    yield server
    server.stop()

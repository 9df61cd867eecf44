"""`tenantry realm add|list|show|test|update|remove` and `tenantry secret-key generate`, as the
operator would run them, against a real slapd."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tenantry.cli import app as cli_app
from tenantry.db.engine import Database
from tenantry.identity.secretbox import SecretBox
from tests import ldap_server as ls


def _realm(slapd: ls.Slapd, password: str = ls.ADMIN_PASSWORD) -> dict[str, Any]:
    return {
        "id": "corp",
        "type": "ldap",
        "name": "Corp",
        "ldap": {
            "url": slapd.url,
            "bindDn": ls.ADMIN_DN,
            "bindPassword": password,
            "userBaseDn": ls.PEOPLE,
            "groupBaseDn": ls.GROUPS,
        },
    }


def test_the_realm_commands(
    database: Database, slapd: ls.Slapd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = CliRunner()
    key = cli.invoke(cli_app, ["secret-key", "generate"])
    assert key.exit_code == 0
    secret_key = key.stdout.strip()
    SecretBox([secret_key])  # a valid Fernet key
    monkeypatch.setenv("TENANTRY_DATABASE_URL", database.settings.database_url)
    monkeypatch.setenv("TENANTRY_SECRET_KEY", secret_key)
    monkeypatch.setenv("TENANTRY_REALM_TIMEOUT_SECONDS", "2")
    doc = tmp_path / "realm.json"
    doc.write_text(json.dumps(_realm(slapd)))

    added = cli.invoke(cli_app, ["realm", "add", "-f", str(doc)])
    assert added.exit_code == 0, added.output
    assert '"bindPasswordSet": true' in added.stdout
    assert ls.ADMIN_PASSWORD not in added.output
    listed = cli.invoke(cli_app, ["realm", "list"])
    assert listed.exit_code == 0 and listed.stdout.startswith("corp  ldap  Corp")
    shown = cli.invoke(cli_app, ["realm", "show", "corp"])
    assert json.loads(shown.stdout)["ldap"]["userBaseDn"] == ls.PEOPLE
    tested = cli.invoke(cli_app, ["realm", "test", "corp"])
    assert tested.exit_code == 0, tested.output
    assert [line.split()[:2] for line in tested.stdout.splitlines()] == [
        ["ok", "bind:"],
        ["ok", "users:"],
        ["ok", "groups:"],
    ]

    doc.write_text(json.dumps(_realm(slapd, password="not-the-password")))
    assert cli.invoke(cli_app, ["realm", "update", "corp", "-f", str(doc)]).exit_code == 0
    failing = cli.invoke(cli_app, ["realm", "test", "corp"])
    assert failing.exit_code == 1
    assert failing.stdout.startswith("FAIL  bind: the LDAP server refused the service account")
    assert "not-the-password" not in failing.output

    assert cli.invoke(cli_app, ["realm", "remove", "corp"]).exit_code == 0
    assert cli.invoke(cli_app, ["realm", "show", "corp"]).exit_code == 1


def test_bad_realm_documents_say_what_is_wrong_without_quoting_them(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TENANTRY_DATABASE_URL", database.settings.database_url)
    cli = CliRunner()
    doc = tmp_path / "realm.json"
    doc.write_text("{not json")
    assert cli.invoke(cli_app, ["realm", "add", "-f", str(doc)]).exit_code == 2
    doc.write_text(json.dumps({"id": "corp", "type": "ldap", "name": "x", "ldap": [1]}))
    wrong = cli.invoke(cli_app, ["realm", "add", "-f", str(doc)])
    assert wrong.exit_code == 2 and "ldap" in wrong.output
    secret = {
        "id": "corp",
        "type": "ldap",
        "name": "x",
        "ldap": {"url": "ldap://x", "userBaseDn": "dc=x", "bindPassword": "Hush-123"},
    }
    doc.write_text(json.dumps(secret))
    no_key = cli.invoke(cli_app, ["realm", "add", "-f", str(doc)])
    assert no_key.exit_code == 1 and "TENANTRY_SECRET_KEY" in no_key.output
    assert "Hush-123" not in no_key.output
    assert (
        cli.invoke(cli_app, ["realm", "add", "-f", str(tmp_path / "missing.json")]).exit_code == 2
    )

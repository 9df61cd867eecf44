"""Mailers: the outbox directory, SMTP (against a tiny in-process SMTP server), the SMTP URL and
which mailer the settings choose."""

from __future__ import annotations

import asyncio
import email
import email.policy
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tenantry.app import create_app
from tenantry.config import load_settings
from tenantry.mail import (
    NullMailer,
    OutboxMailer,
    SmtpConfig,
    SmtpMailer,
    build_message,
    make_mailer,
    parse_smtp_url,
)

SECRET_TEXT = "Open https://t.example/invite#tni_SeCrEt123 to accept.\n"


def _parse(data: bytes) -> email.message.EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


async def test_outbox_writes_one_private_eml_per_message(tmp_path: Path) -> None:
    outbox = tmp_path / "out" / "box"
    mailer = OutboxMailer(outbox, "Tenantry <noreply@t.example>")
    await mailer.send("ann@acme.io", "You are invited", SECRET_TEXT)
    await mailer.send("bob@acme.io", "Second", "hello\n")
    files = sorted(outbox.iterdir())
    assert [f.suffix for f in files] == [".eml", ".eml"]
    assert all("tni_" not in f.name and "SeCrEt" not in f.name for f in files)
    assert stat.S_IMODE(outbox.stat().st_mode) == 0o700
    assert {stat.S_IMODE(f.stat().st_mode) for f in files} == {0o600}
    messages = {m["To"]: m for m in (_parse(f.read_bytes()) for f in files)}
    ann = messages["ann@acme.io"]
    assert ann["From"] == "Tenantry <noreply@t.example>" and ann["Subject"] == "You are invited"
    assert ann["Message-ID"].endswith("@t.example>") and ann["Date"]
    assert ann.get_content() == SECRET_TEXT


@pytest.mark.parametrize(
    ("to", "subject"), [("ann@acme.io\r\nBcc: x@evil.io", "hi"), ("ann@acme.io", "hi\nBcc: x")]
)
def test_header_injection_is_refused(to: str, subject: str) -> None:
    with pytest.raises(ValueError, match="one line"):
        build_message("t@t.example", to, subject, "text")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.local", SmtpConfig("mail.local", 25, False, False, None)),
        ("smtp://mail.local:2525/", SmtpConfig("mail.local", 2525, False, False, None)),
        (
            "smtp://me%40x.io:p%3Ass@smtp.x.io:587?starttls=1",
            SmtpConfig("smtp.x.io", 587, False, True, "me@x.io", "p:ss"),
        ),
        ("smtps://u:pw@smtp.x.io", SmtpConfig("smtp.x.io", 465, True, False, "u", "pw")),
        ("smtp://h?starttls=0", SmtpConfig("h", 25, False, False, None)),
    ],
)
def test_smtp_urls(url: str, expected: SmtpConfig) -> None:
    assert parse_smtp_url(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://h", "smtp:// or smtps://"),
        ("smtp://", "needs a host"),
        ("smtp://h:99999", "invalid port"),
        ("smtp://h/path", "no path"),
        ("smtp://h?tls=1", "unknown option"),
        ("smtp://h?starttls=maybe", "1 or 0"),
        ("smtp://h?starttls=1&starttls=0", "twice"),
        ("smtps://h?starttls=1", "already TLS"),
        ("smtp://u:hunter2@h", "credentials need TLS"),
        ("smtps://:hunter2@h", "needs a user name"),
    ],
)
def test_bad_smtp_urls_are_refused_without_the_password(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as err:
        parse_smtp_url(url)
    assert "hunter2" not in str(err.value)


def test_the_settings_choose_the_mailer(tmp_path: Path) -> None:
    assert isinstance(make_mailer(load_settings(environment="test")), NullMailer)
    dev = "development"
    assert isinstance(make_mailer(load_settings(mail_outbox="", environment=dev)), NullMailer)
    outbox = make_mailer(load_settings(mail_outbox=str(tmp_path), environment=dev))
    assert isinstance(outbox, OutboxMailer) and outbox.directory == tmp_path
    settings = load_settings(smtp_url="smtps://u:hunter2@smtp.x.io", environment="test")
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.model_dump())
    smtp = make_mailer(settings)
    assert isinstance(smtp, SmtpMailer) and smtp.config.password == "hunter2"
    assert "hunter2" not in repr(smtp.config)
    assert isinstance(make_mailer(load_settings(smtp_url="", environment=dev)), OutboxMailer)
    with pytest.raises(ValueError, match="credentials need TLS") as err:
        create_app(load_settings(smtp_url="smtp://u:hunter2@h"))
    assert "hunter2" not in str(err.value)
    with pytest.raises(ValueError, match="TENANTRY_MAIL_FROM"):
        load_settings(mail_from="not an address")


# --- a minimal SMTP server, enough for smtplib's EHLO/MAIL/RCPT/DATA/QUIT ---------------------


@dataclass
class Received:
    sender: str = ""
    recipients: list[str] = field(default_factory=list)
    data: bytes = b""


async def _smtp_session(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, inbox: list[Received]
) -> None:
    def reply(line: str) -> None:
        writer.write(line.encode() + b"\r\n")

    reply("220 test ESMTP")
    current = Received()
    while line := await reader.readline():
        verb = line.decode().strip().split(" ", 1)[0].upper()
        if verb in ("EHLO", "HELO"):
            reply("250 test")
        elif verb == "MAIL":
            current.sender = line.decode().split(":", 1)[1].strip()
            reply("250 OK")
        elif verb == "RCPT":
            current.recipients.append(line.decode().split(":", 1)[1].strip())
            reply("250 OK")
        elif verb == "DATA":
            reply("354 go ahead")
            lines = []
            while (chunk := await reader.readline()) not in (b".\r\n", b""):
                lines.append(chunk[1:] if chunk.startswith(b"..") else chunk)
            current.data = b"".join(lines)
            inbox.append(current)
            current = Received()
            reply("250 queued")
        elif verb == "QUIT":
            reply("221 bye")
            await writer.drain()
            break
        else:
            reply("502 not implemented")
        await writer.drain()
    writer.close()


@pytest.fixture
async def smtp_server() -> AsyncIterator[tuple[int, list[Received]]]:
    inbox: list[Received] = []
    server = await asyncio.start_server(
        lambda r, w: _smtp_session(r, w, inbox), host="127.0.0.1", port=0
    )
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield port, inbox


async def test_smtp_mailer_delivers(smtp_server: tuple[int, list[Received]]) -> None:
    port, inbox = smtp_server
    mailer = SmtpMailer(parse_smtp_url(f"smtp://127.0.0.1:{port}"), "noreply@t.example")
    await mailer.send("ann@acme.io", "You are invited", SECRET_TEXT + ".leading dot\n")
    [got] = inbox
    assert got.sender == "<noreply@t.example>" and got.recipients == ["<ann@acme.io>"]
    message = _parse(got.data.replace(b"\r\n", b"\n"))
    assert message["To"] == "ann@acme.io" and message["Subject"] == "You are invited"
    assert message.get_content() == SECRET_TEXT + ".leading dot\n"


async def test_smtp_mailer_reports_an_unreachable_server() -> None:
    server = await asyncio.start_server(lambda r, w: None, host="127.0.0.1", port=0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    mailer = SmtpMailer(parse_smtp_url(f"smtp://127.0.0.1:{port}"), timeout=2)
    with pytest.raises(ConnectionRefusedError):
        await mailer.send("ann@acme.io", "s", "t")

"""Outgoing e-mail: one small `Mailer` protocol and three ways to deliver.

- `SmtpMailer`: stdlib smtplib in a worker thread, configured by one URL
  (TENANTRY_SMTP_URL, e.g. `smtp://user:pass@host:587?starttls=1` or `smtps://host:465`).
- `OutboxMailer`: writes each message as an .eml file into a directory (TENANTRY_MAIL_OUTBOX),
  for development; the files are readable by the owner only, since messages carry secrets
  (invite links) in their body.
- `NullMailer`: drops everything (tests, or TENANTRY_MAIL_OUTBOX="" without SMTP).

Messages may carry secrets in their text; nothing here logs a message's text or an SMTP
password, and outbox file names are random, never derived from the content.
"""

from __future__ import annotations

import logging
import os
import secrets
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

import anyio

from tenantry.clock import utcnow
from tenantry.config import DEFAULT_FROM, Settings
from tenantry.db.priority import stepped_aside

log = logging.getLogger("tenantry.mail")

SMTP_TIMEOUT_SECONDS = 30.0


class Mailer(Protocol):
    async def send(self, to: str, subject: str, text: str) -> None: ...


@dataclass(frozen=True)
class Mail:
    """One message, as a service composes it; sent later (see `deliver`)."""

    to: str
    subject: str
    text: str


def build_message(sender: str, to: str, subject: str, text: str) -> EmailMessage:
    """A plain-text message. Header values with line breaks are refused (no header injection)."""
    for name, value in (("From", sender), ("To", to), ("Subject", subject)):
        if "\r" in value or "\n" in value:
            raise ValueError(f"{name} header must be one line")
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=_domain(sender))
    message.set_content(text)
    return message


def _domain(address: str) -> str:
    _, addr = parseaddr(address)
    return addr.rpartition("@")[2] or "localhost"


class NullMailer:
    """Sends nothing."""

    async def send(self, to: str, subject: str, text: str) -> None:
        log.debug("mail dropped (no mailer configured)")


class OutboxMailer:
    """Each message becomes `<UTC time>-<random>.eml` in `directory` (created on first use,
    owner-only). Written to a temporary name and renamed, so readers never see half a file."""

    def __init__(self, directory: str | os.PathLike[str], sender: str = DEFAULT_FROM) -> None:
        self.directory = Path(directory)
        self.sender = sender

    async def send(self, to: str, subject: str, text: str) -> None:
        message = build_message(self.sender, to, subject, text)
        with stepped_aside():  # not a database round trip (db/priority.py)
            path = await anyio.to_thread.run_sync(self._write, bytes(message))
        log.info("mail written to the outbox: %s", path.name)

    def _write(self, data: bytes) -> Path:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = f"{utcnow():%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(6)}.eml"
        final = self.directory / name
        partial = self.directory / f".{name}.part"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        partial.replace(final)
        return final


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    implicit_tls: bool  # smtps://
    starttls: bool
    username: str | None
    password: str | None = None

    def __repr__(self) -> str:  # never show the password
        return (
            f"SmtpConfig(host={self.host!r}, port={self.port}, implicit_tls={self.implicit_tls}, "
            f"starttls={self.starttls}, username={self.username!r})"
        )


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_smtp_url(url: str) -> SmtpConfig:
    """`smtp://[user[:pass]@]host[:port][?starttls=1]` or `smtps://[user[:pass]@]host[:port]`.

    Defaults: port 25 (smtp) or 465 (smtps). User and password are percent-decoded. A password
    is only accepted over TLS (smtps, or smtp with starttls=1), so it never crosses the network
    in clear text. Raises ValueError with a message that never contains the password.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError("TENANTRY_SMTP_URL must start with smtp:// or smtps://")
    host = parts.hostname
    if not host:
        raise ValueError("TENANTRY_SMTP_URL needs a host")
    if parts.path not in ("", "/") or parts.fragment:
        raise ValueError("TENANTRY_SMTP_URL takes no path or fragment")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("TENANTRY_SMTP_URL has an invalid port") from None
    implicit_tls = parts.scheme == "smtps"
    starttls = False
    seen: set[str] = set()
    for key, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
        if key in seen:
            raise ValueError(f"TENANTRY_SMTP_URL: {key} given twice")
        seen.add(key)
        if key != "starttls":
            raise ValueError(f"TENANTRY_SMTP_URL: unknown option {key!r} (known: starttls)")
        if value.lower() in _TRUE:
            starttls = True
        elif value.lower() not in _FALSE:
            raise ValueError("TENANTRY_SMTP_URL: starttls must be 1 or 0")
    if implicit_tls and starttls:
        raise ValueError("TENANTRY_SMTP_URL: smtps:// is already TLS; drop starttls")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if password is not None and not username:
        raise ValueError("TENANTRY_SMTP_URL: a password needs a user name")
    if username and not (implicit_tls or starttls):
        raise ValueError(
            "TENANTRY_SMTP_URL: credentials need TLS (smtps:// or ?starttls=1), "
            "so that the password is not sent in clear text"
        )
    return SmtpConfig(
        host=host,
        port=port or (465 if implicit_tls else 25),
        implicit_tls=implicit_tls,
        starttls=starttls,
        username=username,
        password=password,
    )


class SmtpMailer:
    """One SMTP connection per message, in a worker thread (at most `concurrency` at once)."""

    def __init__(
        self,
        config: SmtpConfig,
        sender: str = DEFAULT_FROM,
        *,
        timeout: float = SMTP_TIMEOUT_SECONDS,
        concurrency: int = 4,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.config = config
        self.sender = sender
        self.timeout = timeout
        self._tls = tls_context or ssl.create_default_context()
        self._limiter = anyio.CapacityLimiter(concurrency)

    async def send(self, to: str, subject: str, text: str) -> None:
        message = build_message(self.sender, to, subject, text)
        with stepped_aside():  # not a database round trip (db/priority.py)
            await anyio.to_thread.run_sync(self._send_sync, message, limiter=self._limiter)

    def _send_sync(self, message: EmailMessage) -> None:
        cfg = self.config
        smtp: smtplib.SMTP
        if cfg.implicit_tls:
            smtp = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=self.timeout, context=self._tls)
        else:
            smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=self.timeout)
        with smtp:
            if cfg.starttls:
                smtp.starttls(context=self._tls)
            if cfg.username:
                smtp.login(cfg.username, cfg.password or "")
            smtp.send_message(message)


def make_mailer(settings: Settings) -> Mailer:
    """SMTP when TENANTRY_SMTP_URL is set; else no mail in tests; else the outbox directory
    (TENANTRY_MAIL_OUTBOX; empty turns mail off)."""
    if settings.smtp_url is not None:
        return SmtpMailer(parse_smtp_url(settings.smtp_url.get_secret_value()), settings.mail_from)
    if settings.environment == "test" or not settings.mail_outbox:
        return NullMailer()
    return OutboxMailer(settings.mail_outbox, settings.mail_from)


async def deliver(mailer: Mailer, mail: Mail) -> None:
    """Send, and log (never raise) on failure: runs as a background task after the response,
    where an exception would only reach the server's log anyway. Neither the text nor the
    error message is logged, since either may carry what the text carries."""
    try:
        await mailer.send(mail.to, mail.subject, mail.text)
    except Exception as exc:
        log.warning("sending mail failed: %s", type(exc).__name__)

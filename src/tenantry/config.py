"""Settings: one typed object, read from TENANTRY_* environment variables, validated at start."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from email.utils import parseaddr
from functools import cached_property
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

HashPriority = Literal["idle", "nice", "normal"]  # see identity/passwords.py
PinLoop = Literal["auto", "on", "off"]  # see identity/passwords.py
_SWITCH = {"true": "on", "1": "on", "yes": "on", "false": "off", "0": "off", "no": "off"}

DEFAULT_FROM = "Tenantry <tenantry@localhost>"


def check_sender(sender: str) -> None:
    """TENANTRY_MAIL_FROM: one address, optionally with a display name, on one line."""
    _, address = parseaddr(sender)
    if "\r" in sender or "\n" in sender or "@" not in address:
        raise ValueError("TENANTRY_MAIL_FROM must be an e-mail address, e.g. Tenantry <t@x.io>")


DNS_PORT = 53


@dataclass(frozen=True)
class Nameserver:
    """A DNS server to ask (TENANTRY_DNS_NAMESERVERS; tenantry.dns)."""

    host: str
    port: int = DNS_PORT


def _one(entry: str) -> Nameserver:
    host, port = entry, str(DNS_PORT)
    if entry.startswith("["):  # [v6]:port
        host, _, rest = entry[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"not [address]:port: {entry}")
            port = rest[1:]  # "" is refused by int() below
    elif entry.count(":") == 1:  # v4:port (a bare v6 address has several colons)
        host, port = entry.split(":")
    ipaddress.ip_address(host)  # ValueError: name servers are addresses, not names
    number = int(port)
    if not 0 < number < 65536:
        raise ValueError(f"port out of range: {port}")
    return Nameserver(host, number)


def parse_nameservers(text: str) -> tuple[Nameserver, ...]:
    """`host[:port], ...` as name servers; () for "" (the system's); ValueError otherwise."""
    entries = [e.strip() for e in text.split(",") if e.strip()]
    try:
        return tuple(_one(e) for e in entries)
    except ValueError:
        raise ValueError(
            "TENANTRY_DNS_NAMESERVERS: IP addresses with an optional port, e.g. "
            "127.0.0.1:5353,[::1]:53"
        ) from None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TENANTRY_", extra="ignore", frozen=True)

    environment: Literal["development", "production", "test"] = "development"
    database_url: str = "sqlite+aiosqlite:///./tenantry.db"
    # Pool size per worker; PostgreSQL only (SQLite uses one writer and a few readers).
    db_pool_size: int = Field(default=10, ge=1, le=200)
    # Requests whose body is larger than this are refused before the body is read.
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    invite_ttl_days: int = Field(default=7, ge=1, le=365)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # FastAPI's native OpenTelemetry (traces, metrics, logs through the global providers).
    opentelemetry: bool = False
    # Base URL people use to reach Tenantry (invite links are built from it).
    public_url: str = "http://127.0.0.1:8000"

    # Passwords: argon2id at or above OWASP's minimum (m=19 MiB, t=2, p=1).
    argon2_time_cost: int = Field(default=2, ge=2, le=20)
    argon2_memory_kib: int = Field(default=19456, ge=19456, le=4_194_304)
    argon2_parallelism: int = Field(default=1, ge=1, le=16)
    # How many of an account's last passwords (its current one included) cannot be set again
    # (identity/password_history.py); 0 = any. 5, as Unleash.
    password_history: int = Field(default=5, ge=0, le=24)
    # Password hashes computed at once per worker process (default: one core fewer than the
    # machine has, at least one, so that a burst of sign-ins leaves a core to everything else).
    hash_concurrency: int | None = Field(default=None, ge=1, le=256)
    # How hashing threads are scheduled (Linux): "idle" = SCHED_IDLE, one CPU each, yielding at
    # once to request handling; "nice" = nice 10; "normal". See access/passwords.py.
    hash_priority: HashPriority = "idle"
    # With "idle": also run each worker's event loop on the CPU of its first hashing thread,
    # so that a request there preempts that worker's own hashing at once. "auto": only when
    # the worker holds that CPU alone (a claim in `cpu_claims_dir`, shared by every Tenantry
    # server that uses the same directory) and its cgroup has no CPU quota; "on": always;
    # "off": never. See docs/operations.md.
    pin_event_loop: PinLoop = "auto"
    # Where workers claim CPUs (one lock file per CPU, released when the process ends): a
    # directory every Tenantry server on the host sees. "" = no claims ("auto" never pins).
    # Only lock files are made there, opened read-only without following links (S108).
    cpu_claims_dir: str = "/dev/shm"  # noqa: S108

    # Session tokens slide: each use extends them by `session_idle_minutes`, up to
    # `session_max_hours` after sign-in.
    session_idle_minutes: int = Field(default=120, ge=1, le=43_200)
    session_max_hours: int = Field(default=12, ge=1, le=8_760)

    # Lockout after `lockout_threshold` consecutive failures, for base * 2^(extra failures),
    # capped; a successful sign-in resets it.
    lockout_threshold: int = Field(default=5, ge=1, le=100)
    lockout_base_seconds: int = Field(default=30, ge=1, le=3600)
    lockout_max_seconds: int = Field(default=900, ge=1, le=86_400)

    # Sign-in attempts per client address and per account, per minute. In memory per worker,
    # shared by all workers when TENANTRY_REDIS_URL is set.
    login_rate_per_ip: int = Field(default=30, ge=1, le=100_000)
    login_rate_per_account: int = Field(default=10, ge=1, le=100_000)
    redis_url: str | None = None

    # Elevated permissions ("sudo"): how long they last, and whether sensitive operations
    # demand them.
    require_elevation: bool = False
    elevation_minutes: int = Field(default=10, ge=1, le=1440)

    # The per-worker cache of callers and of the "who am I" answers (identity/cache.py):
    # "off" answers every request from the database (to measure or operate the cold path).
    cache: Literal["on", "off"] = "on"
    cache_entries: int = Field(default=200_000, ge=1, le=10_000_000)
    # A directory where each worker writes its cache counters (hits, misses, invalidations)
    # as <pid>.json when it stops: for benchmarks; "" = nowhere.
    cache_stats_dir: str = ""
    # How long a read waits at most for this worker's write transactions under way
    # (db/priority.py: writes first, so that reads cannot starve them); 0: reads never wait.
    write_priority_ms: int = Field(default=50, ge=0, le=10_000)

    audit_retention_days: int = Field(default=365, ge=1, le=36_500)

    # Outgoing mail (invite links): SMTP when `smtp_url` is set (smtp://user:pass@host:587?
    # starttls=1, or smtps://host:465); otherwise .eml files in `mail_outbox` ("" = no mail).
    # The URL is checked when the app is built (tenantry.mail.make_mailer), not here: a
    # pydantic error would quote the input, password included.
    smtp_url: SecretStr | None = None
    mail_outbox: str = "./mail-outbox"
    mail_from: str = DEFAULT_FROM
    # Invite acceptances per client address per minute (each one is also a guess at a secret).
    invite_accept_rate_per_ip: int = Field(default=20, ge=1, le=100_000)

    # Verified e-mail domains (directory/domains.py): the name servers asked for a domain's
    # TXT challenge, as `host[:port]` separated by commas (IPv6 as `[::1]:5353`); "" = the
    # system's resolver (/etc/resolv.conf). A look-up gives up after `dns_timeout_seconds`.
    dns_nameservers: str = ""
    dns_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # Realm secrets (bind passwords, client secrets, private keys) are encrypted at rest with
    # these Fernet keys (identity/secretbox.py): comma-separated, the first encrypts, every one
    # decrypts (rotation). `tenantry secret-key generate` makes one. Unset: no realm with a
    # secret can be stored or used.
    secret_key: SecretStr | None = None
    # Realm connections (LDAP binds and searches, OpenID discovery, SAML metadata): seconds
    # before a realm that does not answer counts as unreachable.
    realm_timeout_seconds: float = Field(default=5.0, gt=0, le=120)

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "TENANTRY_DATABASE_URL must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
            )
        return value

    @field_validator("pin_event_loop", "cache", mode="before")
    @classmethod
    def _switch_words(cls, value: object) -> object:
        """true/false and the like, as the setting was a switch before it had "auto"."""
        return _SWITCH.get(value.strip().lower(), value) if isinstance(value, str) else value

    @field_validator("smtp_url", "secret_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("mail_from")
    @classmethod
    def _valid_sender(cls, value: str) -> str:
        check_sender(value)
        return value

    @field_validator("dns_nameservers")
    @classmethod
    def _nameservers(cls, value: str) -> str:
        parse_nameservers(value)
        return value

    @cached_property
    def nameservers(self) -> tuple[Nameserver, ...]:
        return parse_nameservers(self.dns_nameservers)

    @cached_property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment; tests pass overrides instead of patching."""
    return Settings(**overrides)  # type: ignore[arg-type]

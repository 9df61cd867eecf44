"""Secrets at rest: realm secrets (bind passwords, client secrets, private keys) are stored
encrypted with Fernet (AES-128-CBC + HMAC-SHA256, `cryptography`) under keys from the
environment, TENANTRY_SECRET_KEY. Several comma-separated keys rotate: the first encrypts,
every one decrypts, and `reencrypt` moves a value to the first.

Nothing here ever puts a secret or a key in an exception message."""

from __future__ import annotations

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from tenantry.config import Settings
from tenantry.errors import Unavailable


class SecretKeyMissing(Unavailable):
    """No TENANTRY_SECRET_KEY: realm secrets can be neither stored nor read."""


class SecretKeyWrong(Unavailable):
    """A stored secret none of the configured keys opens (a key was removed too early)."""


def generate_key() -> str:
    return Fernet.generate_key().decode()


class SecretBox:
    def __init__(self, keys: list[str]) -> None:
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in keys]) if keys else None
        except ValueError:  # the message would not quote the key, but say nothing anyway
            raise ValueError(
                "TENANTRY_SECRET_KEY: each key must be 32 url-safe base64-encoded bytes "
                "(tenantry secret-key generate)"
            ) from None

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        raw = settings.secret_key.get_secret_value() if settings.secret_key else ""
        return cls([k.strip() for k in raw.split(",") if k.strip()])

    @property
    def configured(self) -> bool:
        return self._fernet is not None

    def seal(self, secrets: dict[str, str]) -> str:
        """The secrets as one encrypted token."""
        return self._box().encrypt(orjson.dumps(secrets)).decode()

    def open(self, sealed: str) -> dict[str, str]:
        try:
            value = orjson.loads(self._box().decrypt(sealed.encode()))
        except InvalidToken:
            raise SecretKeyWrong(
                "a stored realm secret cannot be decrypted with TENANTRY_SECRET_KEY"
            ) from None
        return {str(k): str(v) for k, v in dict(value).items()}

    def reencrypt(self, sealed: str) -> str:
        return self._box().rotate(sealed.encode()).decode()

    def _box(self) -> MultiFernet:
        if self._fernet is None:
            raise SecretKeyMissing(
                "realm secrets need TENANTRY_SECRET_KEY (tenantry secret-key generate)"
            )
        return self._fernet

"""The security machinery one process shares: password hasher, policy, rate limits and the
keys that seal realm secrets."""

from __future__ import annotations

from dataclasses import dataclass

from tenantry.config import Settings
from tenantry.identity.passwords import Hasher
from tenantry.identity.policy import SecurityPolicy
from tenantry.identity.ratelimit import make_limiter
from tenantry.identity.secretbox import SecretBox
from tenantry.identity.sessions import Limits


@dataclass
class Security:
    hasher: Hasher
    policy: SecurityPolicy
    limits: Limits
    secrets: SecretBox
    realm_timeout: float = 5.0

    @classmethod
    def from_settings(cls, settings: Settings, *, serving: bool = False) -> Security:
        """`serving`: for the app a server runs. Only a server's workers claim CPUs and may
        pin their event loop (TENANTRY_PIN_EVENT_LOOP); a CLI command or script that hashes
        must not pin itself, nor hand that pin down to what it starts. "auto" leaves SQLite
        alone: its database threads, started later, would inherit the loop's one CPU."""
        pin = settings.pin_event_loop if serving else "off"
        if pin == "auto" and settings.is_sqlite:
            pin = "off"
        return cls(
            hasher=Hasher(
                settings.argon2_time_cost,
                settings.argon2_memory_kib,
                settings.argon2_parallelism,
                settings.hash_concurrency,
                settings.hash_priority,
                pin_loop=pin,
                claims_dir=settings.cpu_claims_dir if serving else "",
            ),
            policy=SecurityPolicy.from_settings(settings),
            limits=Limits(
                make_limiter(settings.redis_url),
                settings.login_rate_per_ip,
                settings.login_rate_per_account,
            ),
            secrets=SecretBox.from_settings(settings),
            realm_timeout=settings.realm_timeout_seconds,
        )

    async def close(self) -> None:
        await self.limits.limiter.close()
        self.hasher.close()

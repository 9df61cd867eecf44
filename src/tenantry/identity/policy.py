"""Security policy: the settings that govern sign-in, sessions, lockout and elevation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from tenantry.config import Settings


@dataclass(frozen=True)
class SecurityPolicy:
    session_idle: timedelta = timedelta(minutes=120)
    session_max: timedelta = timedelta(hours=12)
    lockout_threshold: int = 5
    lockout_base: timedelta = timedelta(seconds=30)
    lockout_max: timedelta = timedelta(seconds=900)
    require_elevation: bool = False
    elevation: timedelta = timedelta(minutes=10)
    password_history: int = 5  # identity/password_history.py

    @classmethod
    def from_settings(cls, s: Settings) -> SecurityPolicy:
        return cls(
            session_idle=timedelta(minutes=s.session_idle_minutes),
            session_max=timedelta(hours=s.session_max_hours),
            lockout_threshold=s.lockout_threshold,
            lockout_base=timedelta(seconds=s.lockout_base_seconds),
            lockout_max=timedelta(seconds=s.lockout_max_seconds),
            require_elevation=s.require_elevation,
            elevation=timedelta(minutes=s.elevation_minutes),
            password_history=s.password_history,
        )

    def lockout_for(self, failures: int) -> timedelta | None:
        """None below the threshold; then base, 2*base, 4*base, ... up to the cap."""
        extra = failures - self.lockout_threshold
        if extra < 0:
            return None
        return min(self.lockout_max, self.lockout_base * (1 << min(extra, 30)))


DEFAULT_POLICY = SecurityPolicy()

"""UTC time helpers: one place decides how time is stored and rendered."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso_z(moment: datetime) -> str:
    """Render as YYYY-MM-DDTHH:MM:SSZ (Astro's documented timestamp format)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

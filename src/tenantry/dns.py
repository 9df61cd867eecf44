"""DNS TXT look-ups (dnspython), for a domain's verification challenge (directory/domains.py).

One `TxtResolver` per app or command, built from the settings: the name servers of
TENANTRY_DNS_NAMESERVERS (or the system's resolver) and one bound on the whole look-up,
retries included (TENANTRY_DNS_TIMEOUT_SECONDS), so a request never waits longer than that.
No cache: a record just published must be seen at the next attempt. The look-up runs inside
the verifying request's transaction (one place commits), like mail delivery: bounded by the
timeout, and stepping aside for reads while it waits.

What a look-up can answer: the TXT strings at the name ([] when the name or its TXT records do
not exist), or `Unavailable` when no name server answered in time or all of them failed.
"""

from __future__ import annotations

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.resolver

from tenantry.config import Nameserver, Settings
from tenantry.db.priority import stepped_aside
from tenantry.errors import Unavailable


class TxtResolver:
    """TXT look-ups through the configured name servers, bounded by `timeout` seconds."""

    def __init__(self, nameservers: tuple[Nameserver, ...], timeout: float) -> None:
        self.timeout = timeout
        self._nameservers = nameservers

    @classmethod
    def from_settings(cls, settings: Settings) -> TxtResolver:
        return cls(settings.nameservers, settings.dns_timeout_seconds)

    def _resolver(self) -> dns.asyncresolver.Resolver:
        if not self._nameservers:
            resolver = dns.asyncresolver.Resolver()  # /etc/resolv.conf
        else:
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = [
                dns.nameserver.Do53Nameserver(n.host, n.port) for n in self._nameservers
            ]
        resolver.timeout = resolver.lifetime = self.timeout
        return resolver

    async def txt(self, name: str) -> list[str]:
        """The TXT strings at `name` (each record's strings joined), [] for none."""
        try:
            with stepped_aside():  # not a database round trip: reads go first (db/priority.py)
                answer = await self._resolver().resolve(
                    dns.name.from_text(name), "TXT", search=False, lifetime=self.timeout
                )
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.resolver.LifetimeTimeout:
            raise Unavailable(f"the DNS did not answer within {self.timeout:g} s") from None
        except (dns.resolver.NoNameservers, dns.exception.DNSException):
            raise Unavailable("the DNS could not answer (no name server did)") from None
        return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]

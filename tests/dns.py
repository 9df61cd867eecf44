"""A real DNS server for the tests (dnslib), on free ports of 127.0.0.1 (UDP and TCP).

It serves the TXT records a test sets (`Zone.txt`): a name the zone holds answers its strings,
a name set with no strings answers NOERROR without records, any other name NXDOMAIN.
`silent_port` is a UDP port where a socket is bound but nobody ever answers (a DNS timeout).
"""

from __future__ import annotations

import socket
import threading
from typing import Any

from dnslib import QTYPE, RCODE, RR, TXT, DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer


def _key(name: str) -> str:
    return name.lower().rstrip(".") + "."


class Zone(BaseResolver):  # type: ignore[misc]
    def __init__(self) -> None:
        self._records: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def txt(self, name: str, *values: str) -> None:
        with self._lock:
            self._records[_key(name)] = list(values)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        reply = request.reply()
        with self._lock:
            found = self._records.get(_key(str(request.q.qname)))
        if found is None:
            reply.header.rcode = RCODE.NXDOMAIN
        elif request.q.qtype == QTYPE.TXT:
            for value in found:
                # One record of <= 255-byte strings, as DNS requires (RFC 1035 §3.3.14).
                strings = [value[i : i + 255] for i in range(0, len(value), 255)] or [""]
                reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT(strings), ttl=0))
        return reply


class LocalDns:
    """The zone served on 127.0.0.1:`port` until `stop()`."""

    def __init__(self) -> None:
        self.zone = Zone()
        quiet = DNSLogger(logf=lambda _: None)
        self._udp = DNSServer(self.zone, address="127.0.0.1", port=0, logger=quiet)
        self.port: int = self._udp.server.server_address[1]
        self._tcp = DNSServer(
            self.zone, address="127.0.0.1", port=self.port, tcp=True, logger=quiet
        )
        self._silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._silent.bind(("127.0.0.1", 0))
        self.silent_port: int = self._silent.getsockname()[1]

    def start(self) -> LocalDns:
        self._udp.start_thread()
        self._tcp.start_thread()
        return self

    def stop(self) -> None:
        for server in (self._udp, self._tcp):
            server.stop()  # shuts the loop down; the socket is closed here
            server.server.server_close()
        self._silent.close()

"""A real OpenLDAP server (Debian slapd) for the realm tests: started once per test session on a
free port in a temporary directory, with people and groupOfNames groups (the memberof overlay
gives each person their memberOf). `make test` installs slapd and ldap-utils where it can."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SUFFIX = "dc=corp,dc=test"
ADMIN_DN = f"cn=admin,{SUFFIX}"
ADMIN_PASSWORD = "slapd-admin-S3cret"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
# uid: (password, mail, cn, groups)
USERS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "alice": ("alice-Pa55word!", "alice@corp.test", "Alice Admin", ("admins", "devs")),
    "bob": ("bob-Pa55word!", "bob@corp.test", "Bob Builder", ("devs",)),
    "carol": ("carol-Pa55word!", "carol@corp.test", "Carol Nogroup", ()),
    "star*": ("star-Pa55word!", "star@corp.test", "Star Name", ()),
}
GROUP_NAMES = ("admins", "devs", "empty")
LDAPADD = shutil.which("ldapadd") or "/usr/bin/ldapadd"
LDAPMODIFY = shutil.which("ldapmodify") or "/usr/bin/ldapmodify"

CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
pidfile {dir}/slapd.pid
database mdb
suffix "{suffix}"
rootdn "{admin}"
rootpw {password}
directory {dir}/data
maxsize 10485760
overlay memberof
access to attrs=userPassword by self auth by anonymous auth by * none
access to * by * read
"""


def group_dn(name: str) -> str:
    return f"cn={name},{GROUPS}"


def person_dn(uid: str) -> str:
    return f"uid={uid},{PEOPLE}"


def _ldif() -> str:
    entries = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: corp\no: Corp\n",
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n",
        f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups\n",
    ]
    for uid, (password, mail, cn, _) in USERS.items():
        entries.append(
            f"dn: {person_dn(uid)}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {cn}\n"
            f"sn: {cn.split()[-1]}\nmail: {mail}\nuserPassword: {password}\n"
        )
    for name in GROUP_NAMES:  # after their members, for memberof
        members = [person_dn(u) for u, v in USERS.items() if name in v[3]] or [ADMIN_DN]
        lines = "".join(f"member: {m}\n" for m in members)
        entries.append(f"dn: {group_dn(name)}\nobjectClass: groupOfNames\ncn: {name}\n{lines}")
    return "\n".join(entries)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Slapd:
    directory: Path
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    def add(self, ldif: str) -> None:
        subprocess.run(  # noqa: S603 - fixed arguments
            [LDAPADD, "-x", "-H", self.url, "-D", ADMIN_DN, "-w", ADMIN_PASSWORD],
            input=ldif.encode(),
            check=True,
            capture_output=True,
        )

    def modify(self, ldif: str) -> None:
        subprocess.run(  # noqa: S603 - fixed arguments
            [LDAPMODIFY, "-x", "-H", self.url, "-D", ADMIN_DN, "-w", ADMIN_PASSWORD],
            input=ldif.encode(),
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        if self.process.stderr:
            self.process.stderr.close()


def start(directory: Path) -> Slapd:
    slapd = shutil.which("slapd") or "/usr/sbin/slapd"
    if not Path(slapd).exists() or not Path(LDAPADD).exists():
        raise RuntimeError(
            "the LDAP realm tests need OpenLDAP: apt-get install slapd ldap-utils "
            "(make test installs them when it runs as root)"
        )
    (directory / "data").mkdir(parents=True)
    conf = directory / "slapd.conf"
    conf.write_text(
        CONF.format(dir=directory, suffix=SUFFIX, admin=ADMIN_DN, password=ADMIN_PASSWORD)
    )
    port = _free_port()
    process = subprocess.Popen(  # noqa: S603 - -d 0: stay in the foreground, so the session can stop it
        [slapd, "-f", str(conf), "-h", f"ldap://127.0.0.1:{port}/", "-d", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = Slapd(directory, port, process)
    deadline = time.monotonic() + 15
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"slapd did not start (run: {slapd} -f {conf} -d 1)") from None
            time.sleep(0.05)
    server.add(_ldif())
    return server

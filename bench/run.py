"""`make bench`: every benchmark with its defaults.

python -m bench.run                          # list users (10k, 100k, 1M; PostgreSQL and SQLite),
                                             # then sign-in (1 and 2 workers)
python -m bench.run --sizes 10k --db sqlite  # extra arguments go to bench.list_users only
"""

from __future__ import annotations

import sys

from bench import list_users, login


def main(argv: list[str] | None = None) -> int:
    status = list_users.main(sys.argv[1:] if argv is None else argv)
    return status or login.main([])


if __name__ == "__main__":
    raise SystemExit(main())

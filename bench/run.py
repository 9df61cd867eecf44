"""`make bench`: every benchmark with its defaults; extra arguments go to bench.list_users.

python -m bench.run                          # 10k, 100k, 1M users on PostgreSQL and SQLite
python -m bench.run --sizes 10k --db sqlite  # a quick look
"""

from __future__ import annotations

import sys

from bench import list_users


def main(argv: list[str] | None = None) -> int:
    return list_users.main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    raise SystemExit(main())

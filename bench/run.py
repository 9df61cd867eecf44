"""`make bench`: the benchmark suite (bench.suite); `python -m bench.run` = `python -m bench.suite`.

python -m bench.run            # everything, ≈20 minutes; rewrites docs/performance.md's results
python -m bench.run --quick    # smoke test, ≈5-7 minutes; results file only
"""

from __future__ import annotations

from bench.suite import main

if __name__ == "__main__":
    raise SystemExit(main())

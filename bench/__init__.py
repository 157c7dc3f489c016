"""vocalis benchmarks: density, added latency, truncation accuracy, cost growth.

Run ``make bench`` (or ``uv run python -m bench.run``; ``--quick`` for a short run). Results go
to ``bench/results/<name>.json`` and ``bench/results/summary.md``; the method is described in
``docs/performance.md``. Timings live here and only here: tests never assert on them.
"""

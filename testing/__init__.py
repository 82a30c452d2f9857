"""What the tests and the benchmarks share: the Bot API stand-in (standin/), the real bot run
against it (harness.py), and throwaway PostgreSQL databases (throwaway_db.py)."""

"""The throughput benchmark still runs end to end (a tiny burst), on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_URL

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_the_throughput_benchmark_answers_and_stores_every_update(database: str) -> None:
    extra = []
    if database == "postgresql":
        if not POSTGRES_URL:
            pytest.skip("set MAXBOT_TEST_POSTGRES_URL to a PostgreSQL server (.ci/run does)")
        extra = ["--database-url", POSTGRES_URL]
    done = subprocess.run(
        [sys.executable, "-m", "bench.telegram_throughput", "--updates", "40", "--users", "8",
         "--runs", "1", "--warmup", "4", "--paced-seconds", "1", "--timeout", "60", "--no-pin",
         *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert re.search(r"maxbot: replied\+stored\s+\d+\.\d", out)
    assert re.search(r"bot's own processing \(CPU\): -?\d+\.\d+ ms per update", out)
    # 40 in the burst + 4 warm-up + 30 paced, every one stored with its status.
    stored = re.search(r"stored: (\{[^}]*\})", out).group(1)
    assert sum(int(n) for n in re.findall(r": (\d+)", stored)) == 74
    assert ", spooled 0" in out and "maxbot spooled" not in out
    assert "Bot API errors" not in out and "warning/error lines" not in out

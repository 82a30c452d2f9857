"""The fault benchmark (bench/faults.py) at a small scale: nothing promised is lost, nothing
is seen twice, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from bench.faults import describe, measure
from index import KnowledgeIndex
from tests.conftest import POSTGRES_URL


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_the_fault_benchmark_finds_nothing_lost_and_nothing_twice(
        kind: str, real_index: KnowledgeIndex) -> None:
    if kind == "postgresql" and not POSTGRES_URL:
        pytest.skip("set MAXBOT_TEST_POSTGRES_URL to a PostgreSQL server (.ci/run does)")
    report = await measure(kind, POSTGRES_URL, users=24, outage_users=6, outage_seconds=None,
                           index=real_index, crash=False)
    summary = describe(report)
    assert report.burst.promised == 8 and report.outage.promised == 2, summary
    assert report.burst.asked == 24 and report.outage.asked == 6
    assert report.clean, summary

"""Shared fixtures: real knowledge folders, the real analyzer and index."""

from __future__ import annotations

import os
import shutil
import textwrap
import uuid
from pathlib import Path

import pytest

from bot.knowledge import load_index
from index import KnowledgeIndex

PROJECT = Path(__file__).resolve().parent.parent
KNOWLEDGE = PROJECT / "knowledge"
# One cache of the analyzed knowledge for every index the tests build and every bot they
# start, as a deployment keeps one (index/token_cache.py; bench/crash.py gives it to the bots).
CACHE_DIR = PROJECT / "var" / "cache"

SMALL_KNOWLEDGE = {
    "sources.yaml": """\
        S1:
          title: 시험용 보도자료
          publisher: 시험부
          date: 2025-12-04
        """,
    "categories.yaml": """\
        fund: {ko: 펀드 개요, en: Fund overview}
        """,
    "glossary.yaml": """\
        terms: [국민성장펀드]
        synonyms:
          국민성장펀드: [성장펀드, NGF]
        """,
    "faq/fund.yaml": """\
        category: fund
        entries:
          - id: fund-size
            question: 국민성장펀드 규모는 얼마인가요?
            alternates: [펀드 규모, 성장펀드 몇 조]
            answer: 국민성장펀드는 150조원 규모입니다.
            sources: [S1]
            as_of: 2025-12-04
          - id: fund-loan
            question: 초저리 대출도 있나요?
            alternates: [저리 대출]
            answer: 초저리 대출로도 지원합니다.
            sources: [S1]
            as_of: 2025-12-04
        """,
    "policy/overview.md": """\
        ---
        title: 펀드 개요
        sources: [S1]
        as_of: 2025-12-04
        category: fund
        ---
        # 목적
        첨단전략산업에 투자합니다.
        """,
}



def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked slow run first: on several workers, the others fill their minutes with
    the short tests instead of waiting for the last long one at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)

def write_knowledge(root: Path, files: dict[str, str] | None = None) -> Path:
    """Write a knowledge folder; `files` overrides or adds files by relative path. The
    decision's models are the project's (they weigh signals, not this folder's words)."""
    shutil.copytree(KNOWLEDGE / "model", root / "model", dirs_exist_ok=True)
    for name, text in {**SMALL_KNOWLEDGE, **(files or {})}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


@pytest.fixture
def small_knowledge(tmp_path: Path) -> Path:
    return write_knowledge(tmp_path / "knowledge")


@pytest.fixture
def knowledge_copy(tmp_path: Path) -> Path:
    """A writable copy of the project's real knowledge base."""
    return Path(shutil.copytree(KNOWLEDGE, tmp_path / "knowledge"))


@pytest.fixture(scope="session")
def real_index() -> KnowledgeIndex:
    """The project's real knowledge base with the real analyzer, built once per test run."""
    return load_index(KNOWLEDGE, cache_dir=CACHE_DIR)


@pytest.fixture
async def tg():
    """The Bot API stand-in on loopback, with Telegram's real limits."""
    from testing.standin import BotApiStandIn

    async with BotApiStandIn() as standin:
        yield standin


POSTGRES_URL = os.environ.get("MAXBOT_TEST_POSTGRES_URL")
# A command taking `stop` or `start` for that server, to test an outage (.ci/postgres).
POSTGRES_CTL = os.environ.get("MAXBOT_TEST_POSTGRES_CTL")


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path):
    """A fresh, empty database: an SQLite file, or a new database on the test PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'db' / 'maxbot.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("no PostgreSQL server in this run: set MAXBOT_TEST_POSTGRES_URL "
                    "(bash .ci/run starts one)")
    from testing.throwaway_db import create_database, drop_database

    name = f"maxbot_test_{uuid.uuid4().hex[:10]}"
    url = await create_database(POSTGRES_URL, name)
    try:
        yield url
    finally:
        await drop_database(POSTGRES_URL, name)


@pytest.fixture
async def bot(tg, tmp_path: Path, real_index: KnowledgeIndex, database_url: str):
    """The real bot, polling the stand-in, with a fresh database (SQLite and PostgreSQL)."""
    from testing.harness import bot_settings, running_bot

    settings = bot_settings(tg, tmp_path, database_url=database_url)
    async with running_bot(tg, settings, real_index) as running:
        yield running


# The admin of the `live` bot.
LIVE_ADMIN = 9100


@pytest.fixture
async def live(tg, tmp_path: Path, knowledge_copy: Path, database_url: str):
    """The bot serving a writable copy of the knowledge base, with one admin and one user."""
    from testing.harness import bot_settings, running_bot

    settings = bot_settings(tg, tmp_path, database_url=database_url, knowledge_dir=knowledge_copy,
                            admin_user_ids=frozenset({LIVE_ADMIN}))
    index = load_index(knowledge_copy, cache_dir=CACHE_DIR)
    async with running_bot(tg, settings, index) as running:
        running.admin = tg.user(LIVE_ADMIN, "관리자")
        running.user = tg.user(9200, "사용자")
        yield running

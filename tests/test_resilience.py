"""The bot under stress and failure: database down, internal errors, bursts, secrets in logs."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
import logging
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError, StatementError
from sqlmodel import select

from bot.app import configure_logging
from bot.storage.database import Database, upgrade_schema
from bot.storage.models import Question, QuestionStatus
from bot.storage.records import Asker, QuestionRecord, Recorded
from index import KnowledgeIndex
from testing.harness import bot_settings, running_bot
from tests.conftest import POSTGRES_CTL

LOCKS: dict[str, sqlite3.Connection] = {}


async def stop_database(database_url: str, tmp_path: Path) -> None:
    if database_url.startswith("sqlite"):
        # Another program holds the write lock: SQLite's way of being unavailable.
        locker = sqlite3.connect(database_url.split(":///", 1)[1], isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        LOCKS[database_url] = locker
        return
    if not POSTGRES_CTL:
        pytest.skip("set MAXBOT_TEST_POSTGRES_CTL to a command that stops/starts the server")
    await asyncio.to_thread(subprocess.run, [POSTGRES_CTL, "stop"], check=True)


async def start_database(database_url: str, tmp_path: Path) -> None:
    if database_url.startswith("sqlite"):
        locker = LOCKS.pop(database_url)
        locker.execute("ROLLBACK")
        locker.close()
        return
    await asyncio.to_thread(subprocess.run, [POSTGRES_CTL, "start"], check=True)


@pytest.mark.alone
async def test_questions_survive_a_database_outage_and_are_written_when_it_is_back(
        tg, tmp_path: Path, real_index: KnowledgeIndex, database_url: str) -> None:
    settings = bot_settings(tg, tmp_path, database_url=database_url)
    async with running_bot(tg, settings, real_index, write_timeout=1.0) as bot:
        user = tg.user(201, "지호")
        tg.send_text(user, "국민성장펀드 규모는?")
        await tg.wait_for_message(user)

        await stop_database(database_url, tmp_path)
        try:
            tg.send_text(user, "대출 금리가 몇 %예요?")
            during = await tg.wait_for_message(user)
            assert "질문을 접수했습니다" in during.text, "the reply still goes out"
            assert settings.spool_path.exists()
        finally:
            await start_database(database_url, tmp_path)
        tg.send_text(user, "M.AX 얼라이언스는 무엇인가요?")
        await tg.wait_for_message(user)
        for _ in range(100):
            rows = await bot.questions()
            if len(rows) == 3:
                break
            await asyncio.sleep(0.1)
        assert not settings.spool_path.exists()
        assert sorted(r.text for r in rows) == sorted(
            ["국민성장펀드 규모는?", "대출 금리가 몇 %예요?", "M.AX 얼라이언스는 무엇인가요?"])
        spooled = next(r for r in rows if r.text.startswith("대출"))
        assert spooled.status == "unanswered"
        assert [f.question_id for f in await bot.followups()] == [spooled.id]


class FailingIndex(KnowledgeIndex):
    """An index whose search breaks, to exercise the error path."""

    def __init__(self, real: KnowledgeIndex) -> None:
        self.__dict__.update(real.__dict__)

    def parse_many(self, texts: list[str]):
        raise RuntimeError("internal detail: /srv/secret/path")


class SlowIndex(KnowledgeIndex):
    """An index that takes seconds over one kind of question, as a pathological input
    might."""

    def __init__(self, real: KnowledgeIndex) -> None:
        self.__dict__.update(real.__dict__)

    def parse_many(self, texts: list[str], situation_ends: list[int] | None = None):
        if any("천천히" in text for text in texts):
            time.sleep(3)
        return super().parse_many(texts, situation_ends)


@pytest.mark.alone
async def test_a_slow_question_holds_up_no_one_else(
        tg, tmp_path: Path, real_index: KnowledgeIndex) -> None:
    async with running_bot(tg, bot_settings(tg, tmp_path), SlowIndex(real_index)):
        slow, others = tg.user(203, "느림"), [tg.user(204 + n, f"보통{n}") for n in range(3)]
        tg.send_text(slow, "천천히 국민성장펀드 규모는?")
        await asyncio.sleep(0.3)  # the slow one is being answered
        started = time.monotonic()
        for n, user in enumerate(others):
            tg.send_text(user, "/start" if n == 0 else "분과 종류")
        for user in others:
            await tg.wait_for_message(user, timeout=2)
        assert time.monotonic() - started < 2
        assert not tg.messages_to(slow), "the slow question is still being answered"
        reply = await tg.wait_for_message(slow, timeout=10)
        assert "150조" in reply.text


@pytest.mark.alone
async def test_stats_over_a_slow_question_hold_up_no_one_else(
        tg, tmp_path: Path, real_index: KnowledgeIndex) -> None:
    """/stats analyses the period's unanswered questions with the index, which takes a while
    over this one: done off the event loop, the others are answered meanwhile."""
    admin = 9300
    settings = bot_settings(tg, tmp_path, admin_user_ids=frozenset({admin}))
    async with running_bot(tg, settings, SlowIndex(real_index)):
        asker, other, boss = tg.user(210, "천천"), tg.user(211, "보통"), tg.user(admin, "관리자")
        tg.send_text(asker, "천천히 국민성장펀드 신청 마감일은 언제인가요?")
        assert "접수" in (await tg.wait_for_message(asker, timeout=10)).text
        tg.send_text(boss, "/stats")
        await asyncio.sleep(0.3)  # the figures are being made
        started = time.monotonic()
        tg.send_text(other, "분과 종류")
        await tg.wait_for_message(other, timeout=2)
        assert time.monotonic() - started < 2
        assert not tg.messages_to(boss), "the figures are still being made"
        assert "통계" in (await tg.wait_for_message(boss, timeout=10)).text


class SlowEntryIndex(KnowledgeIndex):
    """An index that takes seconds to read the texts in `slow` (an FAQ entry's question)."""

    def __init__(self, real: KnowledgeIndex) -> None:
        self.__dict__.update(real.__dict__)
        self.slow: set[str] = set()

    def parse_many(self, texts: list[str], situation_ends: list[int] | None = None):
        if self.slow & set(texts):
            time.sleep(3)
        return super().parse_many(texts, situation_ends)


@pytest.mark.alone
async def test_a_question_button_over_a_slow_entry_holds_up_no_one_else(
        tg, tmp_path: Path, real_index: KnowledgeIndex) -> None:
    """A question button's answer looks up the entries related to it, with the index: done
    off the event loop, the others are answered meanwhile."""
    index = SlowEntryIndex(real_index)
    async with running_bot(tg, bot_settings(tg, tmp_path), index):
        presser, other = tg.user(212, "버튼"), tg.user(213, "보통")
        tg.send_text(presser, "/start")
        welcome = await tg.wait_for_message(presser)
        data = next(d for _, d in welcome.buttons if d and d.startswith("a:"))
        entry = next(e for e in real_index.knowledge.entries if e.id == data.split(":", 1)[1])
        index.slow.add(entry.question)
        tg.press(presser, welcome, data)
        await asyncio.sleep(0.3)  # the related entries are being looked up
        started = time.monotonic()
        tg.send_text(other, "분과 종류")
        await tg.wait_for_message(other, timeout=2)
        assert time.monotonic() - started < 2
        assert not tg.messages_to(presser)[1:], "the entry's answer is still being made"
        assert entry.answer.split()[0] in (await tg.wait_for_message(presser, timeout=10)).text


class CountingIndex(KnowledgeIndex):
    """An index that counts the analyzer calls made for questions, the first one slow so that
    the questions behind it have to wait."""

    def __init__(self, real: KnowledgeIndex) -> None:
        self.__dict__.update(real.__dict__)
        self.calls: list[int] = []

    def parse_many(self, texts: list[str], situation_ends: list[int] | None = None):
        self.calls.append(len(texts))
        if len(self.calls) == 1:
            time.sleep(0.3)
        return super().parse_many(texts, situation_ends)


async def test_questions_waiting_to_be_answered_are_analyzed_together(
        real_index: KnowledgeIndex) -> None:
    from bot.answering import answer
    from bot.services import OffLoopAnswerer
    from bot.settings import Settings

    index = CountingIndex(real_index)
    settings = Settings(_env_file=None)
    answerer = OffLoopAnswerer(workers=2)
    questions = [f"국민성장펀드 규모는? {n}" for n in range(20)]
    try:
        answers = await asyncio.gather(*(answerer.answer(q, index, settings.answering_rules())
                                         for q in questions))
    finally:
        answerer.shutdown()
    assert [a.document for a in answers] == [answer(q, real_index).document for q in questions]
    assert sum(index.calls) == 20 and len(index.calls) <= 4, index.calls


async def test_an_internal_error_is_logged_with_context_and_the_user_told_plainly(
        tg, tmp_path: Path, real_index: KnowledgeIndex, caplog) -> None:
    settings = bot_settings(tg, tmp_path)
    async with running_bot(tg, settings, FailingIndex(real_index)):
        user = tg.user(202, "서아")
        with caplog.at_level(logging.ERROR, logger="bot.handlers.questions"):
            tg.send_text(user, "국민성장펀드 규모는?")
            reply = await tg.wait_for_message(user)
        assert "오류가 발생했습니다" in reply.text
        assert "internal detail" not in reply.text and "Traceback" not in reply.text
        error_id = reply.text.split("오류 번호 ")[1].split(")")[0]
        [record] = [r for r in caplog.records if error_id in r.getMessage()]
        assert "chat=202" in record.getMessage() and record.exc_info is not None


async def test_the_bot_token_never_appears_in_logs(tg, tmp_path: Path,
                                                  real_index: KnowledgeIndex) -> None:
    stream = io.StringIO()
    configure_logging("DEBUG", stream)
    try:
        async with running_bot(tg, bot_settings(tg, tmp_path), real_index):
            user = tg.user(203, "로그")
            tg.send_text(user, "국민성장펀드 규모는?")
            await tg.wait_for_message(user)
    finally:
        logging.getLogger().handlers.clear()
        logging.getLogger().setLevel(logging.WARNING)
    logged = stream.getvalue()
    assert "HTTP Request" in logged and "/bot<token>/sendMessage" in logged
    assert tg.token not in logged
    assert tg.token.split(":")[1] not in logged


async def test_a_burst_of_1000_questions_from_200_users_is_all_answered_and_recorded(
        tg, tmp_path: Path, real_index: KnowledgeIndex) -> None:
    """Telegram allows 30 messages a second; the rate limiter must queue and retry, not drop."""
    questions = ["국민성장펀드 규모는?", "대출 금리가 몇 %예요?", "안녕하세요",
                 "M.AX 얼라이언스 분과 알려줘", "초저리 대출 있나요"]
    async with running_bot(tg, bot_settings(tg, tmp_path), real_index) as bot:
        users = [tg.user(10_000 + n, f"사용자{n}") for n in range(200)]
        for question in questions:
            for user in users:
                tg.send_text(user, question)
        await tg.wait_until(
            lambda: sum(len(tg.messages_to(u)) for u in users) >= 1000, timeout=120)
        assert all(len(tg.messages_to(u)) == 5 for u in users)
        assert tg.parse_errors == []
        rows = await bot.questions()
        assert len(rows) == 1000
        assert {r.status for r in rows} == {"answered", "unanswered", "smalltalk"}
        sends = [r.at for r in tg.calls("sendMessage") if r.status == 200]
        busiest = max(sum(1 for t in sends if s <= t < s + 1) for s in sends)
        assert busiest <= 30, "delivered within Telegram's 30 messages per second"


async def test_questions_arriving_together_each_keep_their_own_record(
        tg, tmp_path: Path, real_index: KnowledgeIndex, database_url: str) -> None:
    """Questions that arrive at once are written in one transaction: each reply's 👍 and
    reference number still belong to that asker's question, and an update delivered twice
    among them is recorded and answered once."""
    answerable = ["국민성장펀드 규모는?", "M.AX 얼라이언스의 10개 분과는 무엇인가요?",
                  "초저리 대출 있나요"]
    unanswerable = "대출 금리가 몇 %예요?"
    settings = bot_settings(tg, tmp_path, database_url=database_url)
    async with running_bot(tg, settings, real_index) as bot:
        users = [tg.user(20_000 + n, f"동시{n}") for n in range(40)]
        asked = {}
        for n, user in enumerate(users):
            asked[user.id] = unanswerable if n % 4 == 3 else answerable[n % 4 % 3]
            message = tg.send_text(user, asked[user.id])
            if n == 0:
                tg.redeliver(message)
        await tg.wait_until(lambda: all(tg.messages_to(u) for u in users), timeout=60)
        await asyncio.sleep(0.5)  # time for a second reply to the redelivered update, if any
        assert all(len(tg.messages_to(u)) == 1 for u in users)

        rows = await bot.questions()
        assert len(rows) == len(users)
        row_of = {r.person_id: r for r in rows}
        followup_of = {f.question_id: f for f in await bot.followups()}
        for user in users:
            [reply] = tg.messages_to(user)
            row = row_of[user.id]
            assert row.text == asked[user.id]
            if asked[user.id] == unanswerable:
                assert f"접수번호 {followup_of[row.id].id}" in reply.text
            else:
                [up] = [data for text, data in reply.buttons if text == "👍"]
                tg.press(user, reply, up)
        await tg.wait_until(lambda: len(tg.callback_answers) == 30, timeout=30)
        assert all(not a.show_alert for a in tg.callback_answers), "each pressed their own"
        rated = {r.person_id: r.feedback for r in await bot.questions()}
        assert rated == {u.id: None if asked[u.id] == unanswerable else 1 for u in users}


async def test_a_question_the_database_refuses_is_reported_to_the_asker_and_the_writer_goes_on(
        tg, tmp_path: Path, real_index: KnowledgeIndex) -> None:
    """Questions wait on a shared writer: a row the database refuses (a constraint the code
    broke; here a trigger of the real SQLite file refuses these askers' rows) must reach each
    waiting asker as the usual error reply, never leave them hanging, and once the database
    takes rows again the next question must be stored."""
    settings = bot_settings(tg, tmp_path)
    async with running_bot(tg, settings, real_index) as running:
        path = settings.database_url.split(":///", 1)[1]
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
            db.execute("CREATE TRIGGER refuse BEFORE INSERT ON question "
                       "WHEN NEW.person_id BETWEEN 300 AND 302 "
                       "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END")
        users = [tg.user(300 + n, f"오류{n}") for n in range(3)]
        for user in users:
            tg.send_text(user, "국민성장펀드 규모는?")
        for user in users:
            reply = await tg.wait_for_message(user, timeout=10)
            assert "오류가 발생했습니다" in reply.text

        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
            db.execute("DROP TRIGGER refuse")
        tg.send_text(users[0], "M.AX 얼라이언스 분과 알려줘")
        reply = await tg.wait_for_message(users[0], timeout=10)
        assert "오류" not in reply.text
        assert [q.text for q in await running.questions()] == ["M.AX 얼라이언스 분과 알려줘"]
        assert not settings.spool_path.exists(), "refused, not taken for an outage"


async def test_a_value_the_database_refuses_is_reported_as_it_is_not_spooled_as_an_outage(
        tmp_path: Path, database_url: str) -> None:
    """A StatementError (here a score that is no number) is the statement's fault, not the
    database being away: the asker's handler gets that error, nothing goes to the spool, and
    the question written with it in the same group commit is stored."""
    await asyncio.to_thread(upgrade_schema, database_url)
    database = Database(database_url, tmp_path / "spool.jsonl")
    try:
        now = dt.datetime.now(dt.UTC)
        bad = QuestionRecord(Asker(401, "값오류"), 401, 1, "국민성장펀드 규모는?",
                             QuestionStatus.ANSWERED, now, score="not a number")
        good = QuestionRecord(Asker(402, "정상"), 402, 1, "M.AX 얼라이언스는?",
                              QuestionStatus.ANSWERED, now, score=0.9)
        refused, stored = await asyncio.gather(database.save_question(bad),
                                               database.save_question(good),
                                               return_exceptions=True)
        assert isinstance(refused, StatementError) and "not a number" in str(refused)
        assert not isinstance(refused, OperationalError)
        assert isinstance(stored, Recorded) and stored.question_id is not None
        assert not stored.spooled
        assert not database.spool_path.exists(), "refused, not taken for an outage"
        async with database.session() as session:
            texts = (await session.exec(select(Question.text))).all()
        assert texts == ["M.AX 얼라이언스는?"]
    finally:
        await database.close()

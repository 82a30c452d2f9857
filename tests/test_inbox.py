"""The inbox: a bot process killed or stopped in the middle of a burst loses no question and
answers no one twice, polling and webhook alike (bot/delivery/inbox.py, bench/crash.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from pathlib import Path

import pytest
from sqlmodel import select

from bench.crash import REPEAT_NOTE, interrupted_burst, start_bot, wait_for_change
from bench.crash_desk import GROUP as DESK_GROUP
from bench.crash_desk import MEMBER as DESK_MEMBER
from bench.crash_desk import UNANSWERABLE as DESK_QUESTION
from bench.crash_desk import desk_crash
from bot.delivery.inbox import FIRST_SENDS_IN_FLIGHT
from bot.storage.database import Database
from bot.storage.models import InboxUpdate, Question
from testing.standin import BotApiStandIn
from tests.test_resilience import start_database, stop_database
from tests.test_run_command import free_port


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_a_bot_killed_mid_burst_answers_every_user_exactly_once_after_a_restart(
        tg: BotApiStandIn, tmp_path: Path, database_url: str, mode: str) -> None:
    extra = {}
    if mode == "webhook":
        if not database_url.startswith("sqlite"):
            pytest.skip("the webhook's way in is the same on both databases")
        port = free_port()
        extra = {"WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram", "WEBHOOK_PORT": str(port),
                 "WEBHOOK_LISTEN": "127.0.0.1", "WEBHOOK_SECRET": "s3cret-header-value"}
    burst = await interrupted_burst(tg, tmp_path, database_url, users=60, stop=signal.SIGKILL,
                                    **extra)

    logs = (tmp_path / "first.log").read_text() + (tmp_path / "restarted.log").read_text()
    assert burst.users_without_answer == 0, logs[-3000:]
    # A reply in flight at the kill may reach its user twice, the second time saying so.
    assert burst.unmarked_duplicates == 0, burst.replies
    assert burst.duplicates <= FIRST_SENDS_IN_FLIGHT
    assert burst.stored == {user: [text] for user, text in burst.asked.items()}
    assert burst.unfinished == 0
    assert "left unfinished by a stopped process" in (tmp_path / "restarted.log").read_text()


@pytest.mark.parametrize("sent", [False, True], ids=["not-sent", "sent"])
async def test_a_reply_in_flight_at_a_kill_reaches_its_user_after_the_restart_marked_as_a_possible_repeat(  # noqa: E501
        tg: BotApiStandIn, tmp_path: Path, database_url: str, sent: bool) -> None:
    """Killed between sending a reply and hearing back, the bot cannot know whether the user
    has it (Telegram has no send-once). It answers again, saying the answer may be a repeat:
    better a marked repeat than a user never answered."""
    bot = await start_bot(tg, tmp_path, database_url, "first.log")
    restarted = None
    database = Database(database_url, tmp_path / "reader-spool.jsonl")
    try:
        await tg.wait_until(lambda: tg.calls("getUpdates"), timeout=120)
        asker = tg.user(650_000, "사용자")
        tg.hold("sendMessage", delivered=sent)
        tg.send_text(asker, "국민성장펀드 규모는?")
        await tg.wait_until(lambda: tg.held("sendMessage"), timeout=60)
        bot.kill()
        await bot.wait()
        tg.release()

        restarted = await start_bot(tg, tmp_path, database_url, "restarted.log")
        again = await tg.wait_for_message(asker, lambda m: REPEAT_NOTE in (m.text or ""),
                                          timeout=120)
        assert "150조원" in again.text
        while any(row.state != "done" for row in await _inbox(database)):
            await wait_for_change(tg, 0.2)
        texts = [m.text for m in tg.messages_to(asker)]
        if sent:
            assert len(texts) == 2 and REPEAT_NOTE not in texts[0] and "150조원" in texts[0]
        else:
            assert texts == [again.text], "the first time the user is answered at all"
        assert await _questions(database) == [(asker.id, "국민성장펀드 규모는?")]
        assert "marked as a possible repeat" in (tmp_path / "restarted.log").read_text()
    finally:
        await database.close()
        for process in (bot, restarted):
            if process is not None and process.returncode is None:
                process.send_signal(signal.SIGTERM)
                await asyncio.wait_for(process.wait(), timeout=30)


@pytest.mark.alone
async def test_sigterm_mid_burst_stops_the_bot_within_8_seconds_and_hands_back_the_rest(
        tg: BotApiStandIn, tmp_path: Path) -> None:
    """A container runtime waits 10 s after SIGTERM; the updates not answered by then are
    answered after the restart, once."""
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'crash.db'}"
    # 200 replies still to go at SIGTERM take 7 s at Telegram's rate: more than the bot waits.
    burst = await interrupted_burst(tg, tmp_path, database_url, users=300, stop=signal.SIGTERM)

    assert burst.stop_seconds < 8
    assert burst.users_without_answer == 0 and burst.unmarked_duplicates == 0, burst.replies
    assert burst.stored == {user: [text] for user, text in burst.asked.items()}
    assert "left unfinished by a stopped process" in (tmp_path / "restarted.log").read_text()


@pytest.mark.alone
async def test_an_update_noted_in_the_spool_while_the_database_is_down_is_answered_once_after_a_kill(  # noqa: E501
        tg: BotApiStandIn, tmp_path: Path, database_url: str) -> None:
    """The database is away: the update is noted in the inbox's spool file before Telegram
    counts it delivered, and so is its reply. Killed before the database is back, the bot
    starts again, writes the spool and does not answer twice."""
    bot = await start_bot(tg, tmp_path, database_url, "first.log")
    restarted = None
    try:
        await tg.wait_until(lambda: tg.calls("getUpdates"), timeout=120)
        first, second, third = (tg.user(640_000 + n, f"사용자{n}") for n in range(3))
        tg.send_text(first, "국민성장펀드 규모는?")
        await tg.wait_for_message(first, timeout=30)

        await stop_database(database_url, tmp_path)
        try:
            tg.send_text(second, "M.AX 얼라이언스 분과 알려줘")
            await tg.wait_for_message(second, timeout=60)
            # Killed once the spool says Telegram had the reply (killed before, the bot would
            # answer again, marked as a possible repeat).
            await tg.wait_until(lambda: _last_spooled_mark(tmp_path / "spool.inbox.jsonl")
                                in ("replied", "done"), timeout=30)
            bot.kill()
            await bot.wait()
        finally:
            await start_database(database_url, tmp_path)

        restarted = await start_bot(tg, tmp_path, database_url, "restarted.log")
        tg.send_text(third, "초저리 대출 있나요")
        await tg.wait_for_message(third, timeout=120)
        database = Database(database_url, tmp_path / "reader-spool.jsonl")
        try:
            while (tmp_path / "spool.inbox.jsonl").exists() or len(await _questions(database)) < 3:
                with contextlib.suppress(TimeoutError):
                    await tg.wait_until(lambda: False, timeout=0.2)
            assert sorted(await _questions(database)) == sorted(
                [(first.id, "국민성장펀드 규모는?"), (second.id, "M.AX 얼라이언스 분과 알려줘"),
                 (third.id, "초저리 대출 있나요")])
        finally:
            await database.close()
        assert [len(tg.messages_to(user)) for user in (first, second, third)] == [1, 1, 1]
    finally:
        for process in (bot, restarted):
            if process is not None and process.returncode is None:
                process.send_signal(signal.SIGTERM)
                await asyncio.wait_for(process.wait(), timeout=30)


@pytest.mark.parametrize("at", ["in flight, not sent", "in flight, sent"])
async def test_secretariat_replies_in_flight_at_a_kill_reach_each_asker_once_and_the_group_hears_of_each(  # noqa: E501
        tg: BotApiStandIn, tmp_path: Path, database_url: str, at: str) -> None:
    """A member answers three follow-ups; the bot is killed while it delivers them. After
    the restart every asker has the secretariat's answer, a second copy only when the kill
    left unknown whether the first went out, and then saying so; the group is told of each
    delivery once and every follow-up is recorded as answered."""
    crash = await desk_crash(tg, tmp_path, database_url, askers=3, at=at)

    logs = (tmp_path / "first.log").read_text() + (tmp_path / "restarted.log").read_text()
    assert crash.askers_without_answer == 0, logs[-3000:]
    assert crash.unmarked_answer_duplicates == 0, crash.answers
    assert crash.confirmations_missing == 0 and crash.confirmation_duplicates == 0, logs[-3000:]
    assert crash.unanswered_followups == 0 and crash.unfinished == 0
    if at == "in flight, sent":  # each asker had it; each gets it again, marked
        assert crash.answer_duplicates == 3 and crash.marked_first_answers == 0
    if at == "in flight, not sent":  # none had it: the first each sees is marked
        assert crash.answer_duplicates == 0 and crash.marked_first_answers == 3


@pytest.mark.parametrize("sent", [False, True], ids=["not-sent", "sent"])
async def test_a_follow_up_closed_while_the_bot_is_killed_is_closed_once_and_its_asker_and_the_group_are_told(  # noqa: E501
        tg: BotApiStandIn, tmp_path: Path, database_url: str, sent: bool) -> None:
    """A member picks the reason for closing a follow-up; the bot is killed while it tells
    the asker. After the restart the same press is carried on: the asker has the notice
    (again, marked, if the first may have gone out) and the group is told once."""
    member = tg.user(DESK_MEMBER, "사무국")
    tg.group(DESK_GROUP, "사무국", members=[member])
    extra = {"SECRETARIAT_CHAT_ID": str(DESK_GROUP)}
    bot = await start_bot(tg, tmp_path, database_url, "first.log", **extra)
    restarted = None
    try:
        await tg.wait_until(lambda: tg.calls("getUpdates"), timeout=120)
        asker = tg.user(660_000, "문의자")
        tg.send_text(asker, DESK_QUESTION)
        post = await tg.wait_for_message(DESK_GROUP, lambda m: any(
            (data or "").startswith("sc:") for _, data in m.buttons), timeout=60)
        followup = next(data for _, data in post.buttons if (data or "").startswith("sc:"))
        tg.press(member, post, followup)
        ask = await tg.wait_for_message(DESK_GROUP, lambda m: any(
            (data or "").startswith("sr:") for _, data in m.buttons), timeout=60)
        await tg.wait_until(lambda: tg.messages_to(asker), timeout=60)  # the bot's reply
        tg.hold("sendMessage", delivered=sent)
        tg.press(member, ask, f"sr:{followup[3:]}:announced")
        await tg.wait_until(lambda: tg.held("sendMessage"), timeout=60)
        bot.kill()
        await bot.wait()
        tg.release()

        restarted = await start_bot(tg, tmp_path, database_url, "restarted.log", **extra)
        closed = await tg.wait_for_message(DESK_GROUP, lambda m: "종료했습니다" in (m.text or "")
                                           and m.reply_to == ask.message_id, timeout=120)
        assert "질문한 분께 사유를 알렸습니다" in closed.text, closed.text
        notices = [m.text or "" for m in tg.messages_to(asker)][1:]
        if sent:
            assert len(notices) == 2 and REPEAT_NOTE not in notices[0]
            assert REPEAT_NOTE in notices[1]
        else:
            assert len(notices) == 1 and REPEAT_NOTE in notices[0]
        assert [m for m in tg.messages_to(DESK_GROUP)
                if m.reply_to == ask.message_id and m.kind == "sent"] == [closed]
        assert "handled again after a restart" in (tmp_path / "restarted.log").read_text()
    finally:
        for process in (bot, restarted):
            if process is not None and process.returncode is None:
                process.send_signal(signal.SIGTERM)
                await asyncio.wait_for(process.wait(), timeout=30)


def _last_spooled_mark(spool: Path) -> str | None:
    """What an inbox spool file last marked its newest update with."""
    if not spool.exists():
        return None
    entries = [json.loads(line) for line in spool.read_text().splitlines() if line.strip()]
    marks = sorted((entry["mark"][1], n, entry["mark"][2])
                   for n, entry in enumerate(entries) if "mark" in entry)
    return marks[-1][2] if marks else None


async def _inbox(database: Database) -> list[InboxUpdate]:
    async with database.session() as session:
        return list((await session.exec(select(InboxUpdate))).all())


async def _questions(database: Database) -> list[tuple[int, str]]:
    async with database.session() as session:
        return [(row.person_id, row.text) for row in (await session.exec(select(Question))).all()]


async def test_a_wait_for_the_notes_cancelled_at_stop_leaves_them_to_be_written(
        tmp_path: Path, database_url: str) -> None:
    """The Updater cancels its polling, waiting for a batch's notes, when it stops; the notes
    are still written, and its cleanup's wait for them ends normally (it raised
    CancelledError, failing the stop, when the wait cancelled the write itself)."""
    from telegram import Update

    from bot.delivery.inbox import Inbox
    from bot.storage.database import upgrade_schema

    await asyncio.to_thread(upgrade_schema, database_url)
    database = Database(database_url, tmp_path / "spool.jsonl")
    inbox = Inbox(database, tmp_path / "spool.jsonl", bot_id=7)
    noted = [inbox.note_soon(Update(update_id=n)) for n in range(1, 51)]
    polling = asyncio.create_task(inbox.flush_notes())
    await asyncio.sleep(0)
    polling.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await polling
    await asyncio.wait_for(inbox.flush_notes(), 30)
    assert all(n.done() and n.result() for n in noted)
    async with database.session() as session:
        rows = (await session.exec(select(InboxUpdate).where(InboxUpdate.bot_id == 7))).all()
    assert sorted(r.update_id for r in rows) == list(range(1, 51))
    await database.close()

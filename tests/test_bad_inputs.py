"""Hostile and broken input: each is refused or made safe, and the bot goes on serving."""

from __future__ import annotations

import asyncio
import io
import logging
from pathlib import Path

import httpx
from sqlmodel import select

from bot.app import configure_logging
from bot.storage.database import Database, upgrade_schema
from bot.storage.models import AdminAction, Question
from bot.storage.records import Asker, QuestionRecord, record_question, utcnow
from index import KnowledgeIndex
from testing.harness import RunningBot, bot_settings, running_bot
from testing.standin import BotApiStandIn
from tests import test_secretariat
from tests.test_run_command import free_port, start_maxbot, stop_maxbot
from tests.test_secretariat import GROUP, ask_unanswerable

# The bot with a secretariat group (tests/test_secretariat.py's `desk`), under this name.
secretariat_desk = test_secretariat.desk

NUL_QUESTION = "국민성장펀드 규모는\x00?"


async def test_a_question_with_a_nul_is_answered_and_stored_made_safe(
        bot: RunningBot) -> None:
    """PostgreSQL refuses U+0000 in text: stored with U+FFFD in its place, never spooled."""
    user = bot.tg.user(40_001, "널문자\x00")
    bot.tg.send_text(user, NUL_QUESTION)
    assert "150조" in (await bot.tg.wait_for_message(user)).text
    [question] = await bot.questions()
    assert question.text == "국민성장펀드 규모는\ufffd?"
    assert not bot.settings.spool_path.exists()


async def test_text_no_database_can_store_is_made_safe_on_both(database_url: str,
                                                                tmp_path: Path) -> None:
    """A lone UTF-16 surrogate (which JSON can carry) cannot be encoded as UTF-8."""
    await asyncio.to_thread(upgrade_schema, database_url)
    database = Database(database_url, tmp_path / "spool.jsonl")
    try:
        async with database.session() as session:
            await record_question(session, QuestionRecord(
                Asker(1, "이\ud800름"), 1, 1, "질문\ud83d 끝\x00", "unanswered", utcnow()))
            [question] = (await session.exec(select(Question))).all()
        assert question.text == "질문\ufffd 끝\ufffd"
    finally:
        await database.close()


async def test_a_poisoned_spool_line_is_set_aside_and_the_rest_is_stored(
        database_url: str, tmp_path: Path, caplog) -> None:
    """A spool with a torn line, a line of another shape and an old line with a NUL: the
    readable questions are stored, the others kept aside and reported by line, and the spool
    goes on working for the next outage."""
    await asyncio.to_thread(upgrade_schema, database_url)
    spool = tmp_path / "spool" / "spool.jsonl"
    spool.parent.mkdir()

    def line(n: int, text: str) -> str:
        return QuestionRecord(Asker(n, f"스풀{n}"), n, n, text, "answered", utcnow()).to_json()

    old_nul = line(3, "예전 질문").replace("예전 질문", "예전\\u0000질문")
    spool.write_text("\n".join([line(1, "첫 질문"), '{"asker": {"id": 2, "first', old_nul,
                                '{"unexpected": true}', line(5, "마지막 질문")]) + "\n",
                     encoding="utf-8")
    database = Database(database_url, spool)
    try:
        with caplog.at_level(logging.ERROR, logger="bot.storage.database"):
            assert await database.replay_spool() == 3
        async with database.session() as session:
            stored = sorted((await session.exec(select(Question.text))).all())
        assert stored == sorted(["첫 질문", "예전\ufffd질문", "마지막 질문"])
        assert not spool.exists()
        assert database.rejected_path.read_text(encoding="utf-8").splitlines() == [
            '{"asker": {"id": 2, "first', '{"unexpected": true}']
        reported = [r.getMessage() for r in caplog.records]
        assert len(reported) == 2
        assert reported[0].startswith("spool line 2 ") and reported[1].startswith("spool line 4 ")

        spool.write_text(line(6, "다음 장애 때 질문") + "\n", encoding="utf-8")
        assert await database.replay_spool() == 1
    finally:
        await database.close()


async def test_an_update_the_library_cannot_decode_is_dropped_once(
        tg: BotApiStandIn, tmp_path: Path, real_index: KnowledgeIndex) -> None:
    """It is dropped with one log line (no user's message in the log) and the updates behind
    it are handled."""
    stream = io.StringIO()
    configure_logging("INFO", stream)
    try:
        async with running_bot(tg, bot_settings(tg, tmp_path), real_index):
            user = tg.user(40_101, "해독")
            broken = tg.enqueue_update("message", {"message_id": 1, "date": 0, "text": "x",
                                                   "chat": "not a chat"})
            tg.send_text(user, "국민성장펀드 규모는?")
            assert "150조" in (await tg.wait_for_message(user)).text
            assert tg.pending_updates == 0
    finally:
        logging.getLogger().handlers.clear()
        logging.getLogger().setLevel(logging.WARNING)
    logged = stream.getvalue()
    [line] = [line for line in logged.splitlines() if "decode" in line or "parsing" in line]
    assert f"update {broken} cannot be decoded" in line
    assert "국민성장펀드" not in logged and "CRITICAL" not in logged


async def test_a_message_without_a_sender_is_ignored(
        tg: BotApiStandIn, tmp_path: Path, real_index: KnowledgeIndex, caplog) -> None:
    async with running_bot(tg, bot_settings(tg, tmp_path), real_index) as bot:
        user = tg.user(40_201, "보낸이")
        with caplog.at_level(logging.ERROR):
            tg.enqueue_update("message", {"message_id": 77, "date": 0, "text": "익명 질문",
                                          "chat": {"id": user.id, "type": "private"}})
            tg.send_text(user, "국민성장펀드 규모는?")
            assert "150조" in (await tg.wait_for_message(user)).text
        assert [m.text for m in tg.messages_to(user)] == [tg.messages_to(user)[0].text]
        assert [q.text for q in await bot.questions()] == ["국민성장펀드 규모는?"]
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_every_button_is_answered_even_stale_forged_or_oversized(
        secretariat_desk: RunningBot) -> None:
    desk = secretariat_desk
    tg = desk.tg
    user = tg.user(40_301, "버튼")
    tg.send_text(user, "국민성장펀드 규모는?")
    answer = await tg.wait_for_message(user)
    too_big = "9" * 25
    for data in ("zz:1", "a:", f"fb:{too_big}:1", f"fu:{too_big}", "fb:2147483648:-1"):
        tg.press(user, answer, data, forged=True)
    _, post = await ask_unanswerable(desk, tg.user(40_302, "문의"), "투자 한도가 기업당 얼마예요?")
    tg.press(desk.member, post, f"sc:{too_big}", forged=True)
    tg.press(desk.member, post, f"pg:{too_big}", forged=True)
    await tg.wait_until(lambda: len(tg.callback_answers) == 7)
    notice = {a.data: a.text for a in tg.callback_answers}
    assert notice["zz:1"].startswith("이 버튼은 더 이상 쓸 수 없습니다")
    assert notice["a:"].startswith("이 질문은 더 이상 없습니다")
    assert notice[f"fb:{too_big}:1"] == notice["fb:2147483648:-1"] == (
        "질문하신 분만 평가할 수 있습니다.")
    assert notice[f"fu:{too_big}"] == "질문하신 분만 보낼 수 있습니다."
    assert notice[f"sc:{too_big}"] == "없는 문의입니다."
    assert not [m for m in tg.messages_to(user)[1:] if "오류" in (m.text or "")]

    tg.send_text(desk.member, f"/followup {too_big}", chat=GROUP)
    assert "사용법" in (await tg.wait_for_message(GROUP, lambda m: m.kind == "sent")).text
    tg.send_text(desk.member, "/stats ²", chat=GROUP)  # a digit to str.isdigit, not to int
    assert "최근 7일" in (await tg.wait_for_message(GROUP, lambda m: m.kind == "sent")).text


async def test_webhook_requests_are_checked_before_their_body_is_read(
        tg: BotApiStandIn, tmp_path: Path) -> None:
    port = free_port()
    secret = "s3cret-header-value"
    process = await start_maxbot(tg, tmp_path, WEBHOOK_URL=f"http://127.0.0.1:{port}/telegram",
                                 WEBHOOK_PORT=str(port), WEBHOOK_SECRET=secret)
    try:
        await tg.wait_until(lambda: tg.webhook_url, timeout=60)

        async def headers_only(headers: str) -> bytes:
            """Announce a 90 MB body, send none of it: the answer must come anyway."""
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"POST /telegram HTTP/1.1\r\nHost: x\r\n"
                         f"Content-Type: application/json\r\nContent-Length: 94371840\r\n"
                         f"{headers}\r\n".encode())
            await writer.drain()
            status = await asyncio.wait_for(reader.readline(), timeout=5)
            writer.close()
            return status

        assert b" 403 " in await headers_only("")
        assert b" 413 " in await headers_only(f"X-Telegram-Bot-Api-Secret-Token: {secret}\r\n")
        async with httpx.AsyncClient() as client:
            url = f"http://127.0.0.1:{port}/telegram"
            signed = {"X-Telegram-Bot-Api-Secret-Token": secret,
                      "Content-Type": "application/json"}
            invalid = await client.post(url, content=b"{not json", headers=signed)
            assert invalid.status_code == 400
            odd = await client.post(url, headers=signed,
                                    content=b'{"update_id": 5, "message": {"chat": 1}}')
            assert odd.status_code == 200, "dropped, so that Telegram does not send it again"
        user = tg.user(40_401, "웹훅")
        tg.send_text(user, "국민성장펀드 규모는?")
        assert "150조" in (await tg.wait_for_message(user, timeout=30)).text
    finally:
        output = await stop_maxbot(process)
    assert "update 5 cannot be decoded" in output


async def test_a_token_telegram_refuses_is_never_printed(tg: BotApiStandIn,
                                                         tmp_path: Path) -> None:
    wrong = tg.token.split(":")[0] + ":" + "Q" * 35
    process = await start_maxbot(tg, tmp_path, TELEGRAM_BOT_TOKEN=wrong)
    await asyncio.wait_for(process.wait(), timeout=60)
    output = process.log_path.read_text(encoding="utf-8")
    assert process.returncode != 0
    assert "Telegram refused TELEGRAM_BOT_TOKEN" in output
    assert wrong not in output and "Q" * 35 not in output


async def test_refused_attempts_are_audited(live: RunningBot) -> None:
    tg = live.tg
    tg.send_text(live.user, "/reload")
    await tg.wait_for_message(live.user)
    tg.send_document(live.user, "정책.md", "# 제목".encode(), "text/markdown")
    await tg.wait_for_message(live.user)
    async with live.database.session() as session:
        refused = (await session.exec(select(AdminAction).where(
            AdminAction.allowed.is_(False)))).all()
    assert [(a.person_id, a.action) for a in refused] == [
        (live.user.id, "reload"), (live.user.id, "upload")]

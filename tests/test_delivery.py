"""Every promise reaches its person: follow-ups reach the secretariat group, replies reach the
askers, through bursts, Bot API failures, database outages and restarts."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from sqlmodel import select

from bot.delivery.sending import GroupPacer, Pacer, RetryingRateLimiter
from bot.storage.database import Database
from bot.storage.models import Question
from index import KnowledgeIndex
from testing.harness import RunningBot, bot_settings, running_bot
from tests.test_resilience import start_database, stop_database

GROUP = -1001700
T = TypeVar("T")
UNANSWERABLE = "투자 한도가 기업당 얼마예요?"


async def eventually(check: Callable[[], Awaitable[T]], timeout: float = 30.0) -> T:
    """Wait until `check()` (a look at the bot's records) is truthy; its value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.05)


def posted_numbers(bot: RunningBot) -> Counter[int]:
    """How often each follow-up number was posted to the group."""
    return Counter(int(n) for m in bot.tg.messages_to(GROUP) if m.kind == "sent"
                   for n in re.findall(r"#(\d+)", m.text or "")[:1])


def all_posted(bot: RunningBot) -> Callable[[], Awaitable[list]]:
    """The follow-ups, once every one has its post recorded (the post is seen in the group
    a moment before the bot writes it down)."""
    async def check() -> list:
        followups = await bot.followups()
        return followups if all(f.group_message_id is not None for f in followups) else []
    return check


def reference_of(text: str) -> int:
    return int(re.search(r"접수번호 (\d+)", text).group(1))


def with_group(bot: RunningBot) -> RunningBot:
    bot.member = bot.tg.user(7001, "김사무")
    bot.group = bot.tg.group(GROUP, "사무국", members=[bot.member])
    return bot


async def test_a_burst_of_unanswerable_questions_reaches_the_group_once_each(
        tg, tmp_path: Path, real_index: KnowledgeIndex, database_url: str) -> None:
    """20 askers told "접수번호 N" at once, among others: each N is posted to the group,
    once, while the group's flood limit (20 a minute) is used up and answering goes on."""
    settings = bot_settings(tg, tmp_path, database_url=database_url, secretariat_chat_id=GROUP)
    async with running_bot(tg, settings, real_index) as bot:
        with_group(bot)
        askers = [tg.user(30_000 + n, f"급증{n}") for n in range(20)]
        others = [tg.user(31_000 + n, f"보통{n}") for n in range(10)]
        for n, user in enumerate(askers):
            tg.send_text(user, f"{UNANSWERABLE} {n}")
        for user in others:
            tg.send_text(user, "국민성장펀드 규모는?")
        replies = [await tg.wait_for_message(user, timeout=60) for user in askers]
        for user in others:
            assert "150조" in (await tg.wait_for_message(user, timeout=60)).text
        promised = {reference_of(r.text) for r in replies}
        assert len(promised) == 20
        await tg.wait_until(lambda: set(posted_numbers(bot)) >= promised, timeout=90)
        assert set(posted_numbers(bot).values()) == {1}, "no follow-up posted twice"
        await eventually(all_posted(bot))


async def test_sends_that_fail_for_a_while_are_retried_until_they_get_through(
        tg, tmp_path: Path, real_index: KnowledgeIndex, database_url: str) -> None:
    """sendMessage answers 502 for a while: the questions asked meanwhile are answered and
    their follow-up posted once it is back, each exactly once."""
    settings = bot_settings(tg, tmp_path, database_url=database_url, secretariat_chat_id=GROUP)
    async with running_bot(tg, settings, real_index) as bot:
        with_group(bot)
        users = [tg.user(32_000 + n, f"장애{n}") for n in range(10)]
        tg.fail("sendMessage", 502, "Bad Gateway")
        for n, user in enumerate(users):
            tg.send_text(user, UNANSWERABLE if n == 0 else "국민성장펀드 규모는?")
        # Each reply and the post have been refused at least twice: they are being retried.
        await tg.wait_until(lambda: len([r for r in tg.rejections if r.error_code == 502]) >= 22,
                            timeout=30)
        assert not any(tg.messages_to(u) for u in users)
        tg.heal()
        replies = [await tg.wait_for_message(user, timeout=30) for user in users]
        assert "접수번호" in replies[0].text
        assert all("150조" in r.text for r in replies[1:])
        await tg.wait_until(lambda: posted_numbers(bot), timeout=30)
        assert posted_numbers(bot) == Counter({reference_of(replies[0].text): 1})
        assert all(len(tg.messages_to(u)) == 1 for u in users), "nobody got a reply twice"


async def test_a_reply_that_cannot_be_sent_in_its_window_is_listed_for_the_secretariat(
        tg, tmp_path: Path, real_index: KnowledgeIndex, database_url: str, caplog) -> None:
    settings = bot_settings(tg, tmp_path, database_url=database_url, secretariat_chat_id=GROUP,
                            send_retry_seconds=0.5)
    async with running_bot(tg, settings, real_index) as bot:
        with_group(bot)
        user = tg.user(33_001, "못받음", username="no_reply")
        tg.fail("sendMessage", 503, "Service Unavailable")
        tg.send_text(user, "국민성장펀드 규모는?")

        async def failed():
            return [q for q in await bot.questions() if q.reply_failed_at is not None]

        [question] = await eventually(failed)
        assert any(f"reply to question {question.id} not sent" in r.getMessage()
                   for r in caplog.records)
        tg.heal()
        tg.send_text(bot.member, "/pending", chat=bot.group)
        listing = await tg.wait_for_message(bot.group)
        assert "답변을 보내지 못한 질문 1건" in listing.text
        assert f"질문 {question.id}" in listing.text and "@no_reply" in listing.text
        assert "국민성장펀드 규모는?" in listing.text and "Service Unavailable" in listing.text


@pytest.mark.alone
async def test_followups_of_questions_replayed_from_the_spool_reach_the_group(
        tg, tmp_path: Path, real_index: KnowledgeIndex, database_url: str) -> None:
    settings = bot_settings(tg, tmp_path, database_url=database_url, secretariat_chat_id=GROUP)
    async with running_bot(tg, settings, real_index, write_timeout=1.0) as bot:
        with_group(bot)
        user = tg.user(34_001, "스풀")
        tg.send_text(user, "국민성장펀드 규모는?")
        await tg.wait_for_message(user)
        await stop_database(database_url, tmp_path)
        try:
            tg.send_text(user, UNANSWERABLE)
            assert "질문을 접수했습니다" in (await tg.wait_for_message(user)).text
        finally:
            await start_database(database_url, tmp_path)
        tg.send_text(user, "M.AX 얼라이언스는 무엇인가요?")  # the next write replays the spool
        await tg.wait_for_message(user)
        post = await tg.wait_for_message(bot.group, timeout=30)
        assert UNANSWERABLE in post.text
        [followup] = await eventually(all_posted(bot))
        assert f"#{followup.id}" in post.text and followup.group_message_id == post.message_id


async def test_a_followup_not_posted_before_a_restart_is_posted_after_it(
        tg, tmp_path: Path, real_index: KnowledgeIndex, database_url: str) -> None:
    settings = bot_settings(tg, tmp_path, database_url=database_url, secretariat_chat_id=GROUP,
                            send_retry_seconds=0.2)
    user = tg.user(35_001, "재시작")
    async with running_bot(tg, settings, real_index) as bot:
        member = with_group(bot).member
        tg.fail("sendMessage", 500, "Internal Server Error")
        tg.send_text(user, UNANSWERABLE)

        async def tried():
            return [f for f in await bot.followups() if f.post_attempts >= 1]

        await eventually(tried)
    tg.heal()
    assert not tg.messages_to(GROUP)
    async with running_bot(tg, settings, real_index) as bot:
        post = await tg.wait_for_message(GROUP, timeout=30)
        [followup] = await bot.followups()
        assert f"#{followup.id}" in post.text and UNANSWERABLE in post.text
        tg.send_text(member, "/pending", chat=GROUP)
        listing = await tg.wait_for_message(GROUP)
        assert "답변을 보내지 못한 질문 1건" in listing.text, "the asker never got the reply"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_telegram_flood_control_is_honoured_with_its_retry_after(
        tg, tmp_path: Path, real_index: KnowledgeIndex, database_url: str) -> None:
    async with running_bot(tg, bot_settings(tg, tmp_path), real_index):
        user = tg.user(36_001, "홍수")
        tg.fail("sendMessage", 429, "Too Many Requests: retry after 1", times=1, retry_after=1)
        tg.send_text(user, "국민성장펀드 규모는?")
        reply = await tg.wait_for_message(user)
        [refused] = [r for r in tg.rejections if r.error_code == 429]
        [sent] = [r for r in tg.calls("sendMessage") if r.status == 200]
        assert "150조" in reply.text and sent.at - refused.at >= 1.0


# --- at most once, where people see it ------------------------------------------------------


async def settled(bot: RunningBot) -> None:
    """Wait until the bot has fetched and finished every update (a redelivered one shows
    nothing when handled right: this is the event to wait for)."""
    app = bot.app
    await bot.tg.wait_until(lambda: bot.tg.pending_updates == 0 and app.update_queue.empty()
                            and app.update_processor.current_concurrent_updates == 0)


async def test_a_secretariat_reply_delivered_twice_or_edited_reaches_the_asker_once(
        tg, tmp_path: Path, real_index: KnowledgeIndex, database_url: str) -> None:
    settings = bot_settings(tg, tmp_path, database_url=database_url, secretariat_chat_id=GROUP)
    async with running_bot(tg, settings, real_index) as bot:
        with_group(bot)
        user = tg.user(37_001, "한번만")
        tg.send_text(user, UNANSWERABLE)
        await tg.wait_for_message(user)
        post = await tg.wait_for_message(GROUP)
        reply = tg.send_text(bot.member, "금리는 3월에 공지합니다.", chat=GROUP, reply_to=post)
        answer = await tg.wait_for_message(user)
        assert "금리는 3월에 공지합니다." in answer.text
        await tg.wait_for_message(GROUP)  # the confirmation
        tg.redeliver(reply)
        await settled(bot)

        tg.edit_text(reply, "금리는 4월에 공지합니다.")
        corrected = await tg.wait_for_message(user)
        assert corrected.kind == "edited" and corrected.message_id == answer.message_id
        assert "4월" in corrected.text and "(추가)" not in corrected.text
        assert "수정한 답변" in (await tg.wait_for_message(GROUP)).text
        await settled(bot)
        assert [m.kind for m in tg.messages_to(user)] == ["sent", "sent", "edited"]
        [followup] = await bot.followups()
        assert followup.status == "answered" and followup.answer == "금리는 3월에 공지합니다."


async def test_send_to_secretariat_pressed_twice_or_delivered_twice_posts_once(
        tg, tmp_path: Path, real_index: KnowledgeIndex, database_url: str) -> None:
    settings = bot_settings(tg, tmp_path, database_url=database_url, secretariat_chat_id=GROUP)
    async with running_bot(tg, settings, real_index) as bot:
        with_group(bot)
        user = tg.user(37_101, "두번")
        tg.send_text(user, "국민성장펀드 규모는?")
        answer = await tg.wait_for_message(user)
        [down] = [data for text, data in answer.buttons if text == "👎"]
        tg.press(user, answer, down)
        thanks = await tg.wait_for_message(user, lambda m: m.kind == "sent")
        [send] = [data for _, data in thanks.buttons if data.startswith("fu:")]
        first = tg.press(user, thanks, send)
        tg.redeliver_press(first)
        await tg.wait_for_message(user, lambda m: "접수번호" in (m.text or ""))
        await tg.wait_until(lambda: posted_numbers(bot))
        await settled(bot)
        tg.press(user, (thanks.chat_id, thanks.message_id), send, forged=True)  # pressed again
        await tg.wait_until(lambda: len(tg.callback_answers) == 3)
        await settled(bot)
        [followup] = await bot.followups()
        assert posted_numbers(bot) == Counter({followup.id: 1})
        assert len([m for m in tg.messages_to(user) if "접수번호" in (m.text or "")]) == 1
        assert f"접수번호 {followup.id}" in tg.callback_answers[-1].text, "told it is sent"


async def test_close_pressed_twice_tells_the_group_once(
        tg, tmp_path: Path, real_index: KnowledgeIndex, database_url: str) -> None:
    settings = bot_settings(tg, tmp_path, database_url=database_url, secretariat_chat_id=GROUP)
    async with running_bot(tg, settings, real_index) as bot:
        with_group(bot)
        tg.send_text(tg.user(37_201, "종료"), UNANSWERABLE)
        post = await tg.wait_for_message(GROUP)
        [followup] = await bot.followups()
        tg.press(bot.member, post, f"sc:{followup.id}")
        ask = await tg.wait_for_message(GROUP)
        pressed = tg.press(bot.member, ask, f"sr:{followup.id}:announced")
        assert "답변 없이 종료" in (await tg.wait_for_message(
            GROUP, lambda m: m.kind == "sent")).text
        tg.redeliver_press(pressed)
        tg.press(bot.member, post, f"sc:{followup.id}")
        await tg.wait_until(lambda: len(tg.callback_answers) == 3)
        await settled(bot)
        assert tg.callback_answers[-1].text == "이미 종료된 문의입니다."
        assert len([m for m in tg.messages_to(GROUP) if "답변 없이 종료" in (m.text or "")]) == 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_stopping_does_not_wait_out_a_send_that_keeps_failing(
        tg, tmp_path: Path, real_index: KnowledgeIndex, database_url: str) -> None:
    """A stop waits for the handlers: one retrying a send for SEND_RETRY_SECONDS (120) must
    give up at once, and its reply is listed for the secretariat."""
    settings = bot_settings(tg, tmp_path, database_url=database_url)
    stack = contextlib.AsyncExitStack()
    bot = await stack.enter_async_context(running_bot(tg, settings, real_index))
    tg.fail("sendMessage", 502, "Bad Gateway")
    tg.send_text(tg.user(38_001, "중단"), "국민성장펀드 규모는?")
    await tg.wait_until(lambda: len(tg.rejections) >= 2)
    await asyncio.wait_for(stack.aclose(), timeout=10)
    database = Database(database_url, settings.spool_path)
    try:
        async with database.session() as session:
            [question] = (await session.exec(select(Question))).all()
    finally:
        await database.close()
    assert question.reply_failed_at is not None and "Bad Gateway" in question.reply_error
    assert bot.app.running is False


async def test_paced_sends_stay_under_the_rate_when_the_event_loop_stalls() -> None:
    """Messages are spaced evenly; after the event loop stalls (a long answer), the senders due
    meanwhile wake together. Still never more than the rate in any one second, as Telegram
    counts them (a burst of 1,000 replies once measured 31)."""
    pacer = Pacer(per_second=28)
    passed: list[float] = []

    async def send() -> None:
        await pacer.wait()
        passed.append(time.monotonic())

    senders = [asyncio.create_task(send()) for _ in range(70)]
    await asyncio.sleep(0.5)
    time.sleep(0.4)  # the loop stalls
    await asyncio.gather(*senders)
    busiest = max(sum(1 for t in passed if start <= t < start + 1) for start in passed)
    assert len(passed) == 70 and busiest <= 28



async def test_paced_messages_never_wait_for_a_connection_after_their_turn() -> None:
    """A message paced and then kept waiting for a connection goes out with those paced after
    it, and Telegram counts them in one second (a burst of 1,000 replies measured 31 at 28
    paced): no more calls to chats are under way at once than the connections they may use."""
    limiter = RetryingRateLimiter(window=5, per_second=1000, in_flight=3)
    under_way, most = 0, 0

    async def slow_call(*args: object, **kwargs: object) -> bool:
        nonlocal under_way, most
        under_way += 1
        most = max(most, under_way)
        await asyncio.sleep(0.05)
        under_way -= 1
        return True

    await asyncio.gather(*(limiter.process_request(slow_call, (), {}, "sendMessage",
                                                   {"chat_id": 1000 + n}, None)
                           for n in range(12)))
    assert most == 3


async def test_a_group_message_counts_in_its_minute_until_telegram_answered() -> None:
    """Telegram takes a group message at some moment before it answers: a slow call keeps its
    place in the group's window until it came back, not from when it started."""
    groups = GroupPacer(per_window=2, window=0.5)
    first = await groups.wait(-100)
    await groups.wait(-100)
    await asyncio.sleep(0.3)
    first[0] = time.monotonic()  # the first call came back only now
    start = time.monotonic()
    await groups.wait(-100)  # the second left the window; the first holds its place
    assert time.monotonic() - start >= 0.45

"""Asking a person on purpose: "사무국에 직접 문의" under a decline and on /start."""

from __future__ import annotations

from pathlib import Path

import pytest

from testing.harness import RunningBot, bot_settings, running_bot

GROUP = -1001900


@pytest.fixture
async def desk(tg, tmp_path: Path, real_index, database_url: str):
    settings = bot_settings(tg, tmp_path, database_url=database_url, secretariat_chat_id=GROUP)
    async with running_bot(tg, settings, real_index) as bot:
        bot.member = tg.user(7801, "김사무")
        bot.group = tg.group(GROUP, "사무국", members=[bot.member])
        yield bot


async def settled(bot: RunningBot) -> None:
    """Every update fetched and finished (a redelivered press shows nothing when handled
    right: this is the event to wait for)."""
    app = bot.app
    await bot.tg.wait_until(lambda: bot.tg.pending_updates == 0 and app.update_queue.empty()
                            and app.update_processor.current_concurrent_updates == 0)


def button(message, label: str) -> str:
    [data] = [data for text, data in message.buttons if label in text]
    return data


async def test_a_declined_question_reaches_the_group_on_request_once_however_often_pressed(
        desk: RunningBot) -> None:
    tg = desk.tg
    user = tg.user(7811, "정다은", username="daeun")
    tg.send_text(user, "내일 비 와?")  # declined as off topic: nothing is queued by itself
    decline = await tg.wait_for_message(user)
    assert "범위가 아닙니다" in decline.text and await desk.followups() == []
    tg.press(user, decline, button(decline, "사무국에 직접 문의"))
    consent = await tg.wait_for_message(user)
    assert "내일 비 와?" in consent.text and "정다은 (@daeun)" in consent.text
    assert "동의하고 보내기" in consent.text
    send = button(consent, "동의하고 보내기")

    first = tg.press(user, consent, send)
    sent = await tg.wait_for_message(user)
    assert sent.kind == "edited" and sent.message_id == consent.message_id
    [followup] = await desk.followups()
    assert f"접수번호 {followup.id}" in sent.text and sent.buttons == []
    assert followup.reason == "direct" and followup.status == "open"
    post = await tg.wait_for_message(desk.group)
    assert f"#{followup.id}" in post.text and "(직접 문의)" in post.text
    assert "내일 비 와?" in post.text and "정다은" in post.text and "@daeun" in post.text

    tg.redeliver_press(first)  # the same press delivered again: handled once
    tg.press(user, consent, send, forged=True)  # pressed again on a stale client
    await tg.wait_until(lambda: len(tg.callback_answers) == 3)
    await settled(desk)
    assert f"접수번호 {followup.id}" in tg.callback_answers[-1].text, "told it is sent"
    assert len([m for m in tg.messages_to(desk.group) if m.kind == "sent"]) == 1
    assert len(await desk.followups()) == 1
    assert len(tg.messages_to(user)) == 3


async def test_start_offers_the_secretariat_and_the_typed_question_is_sent_after_consent(
        desk: RunningBot) -> None:
    tg = desk.tg
    user = tg.user(7812, "오세훈")
    tg.send_text(user, "/start")
    welcome = await tg.wait_for_message(user)
    tg.press(user, welcome, button(welcome, "사무국에 직접 문의"))
    prompt = await tg.wait_for_message(user)
    assert "질문을 입력" in prompt.text and prompt.reply_markup.get("force_reply")

    tg.send_text(user, "국민성장펀드 규모는?")  # the bot could answer it, but a person is asked
    consent = await tg.wait_for_message(user)
    assert "국민성장펀드 규모는?" in consent.text and "150조" not in consent.text
    [question] = await desk.questions()
    assert question.status == "direct" and await desk.followups() == []

    tg.press(user, consent, button(consent, "보내지 않기"))
    kept = await tg.wait_for_message(user)
    assert kept.kind == "edited" and "보내지 않았습니다" in kept.text
    await settled(desk)
    assert await desk.followups() == [] and tg.messages_to(desk.group) == []

    tg.send_text(user, "국민성장펀드 규모는?")  # the next question is answered as usual
    assert "150조" in (await tg.wait_for_message(user)).text

    tg.send_text(user, "/start")
    welcome = await tg.wait_for_message(user)
    tg.press(user, welcome, button(welcome, "사무국에 직접 문의"))
    await tg.wait_for_message(user)
    tg.send_text(user, "투자 심사 담당자와 통화할 수 있나요?")
    consent = await tg.wait_for_message(user)
    tg.press(user, consent, button(consent, "동의하고 보내기"))
    post = await tg.wait_for_message(desk.group)
    [followup] = await desk.followups()
    assert "투자 심사 담당자와 통화할 수 있나요?" in post.text and f"#{followup.id}" in post.text
    assert f"접수번호 {followup.id}" in (await tg.wait_for_message(user)).text


async def test_no_direct_inquiry_without_a_secretariat_group(bot: RunningBot) -> None:
    user = bot.tg.user(7813, "그룹없음")
    bot.tg.send_text(user, "/start")
    welcome = await bot.tg.wait_for_message(user)
    bot.tg.send_text(user, "내일 비 와?")
    decline = await bot.tg.wait_for_message(user)
    assert not [d for m in (welcome, decline) for _, d in m.buttons if d.startswith("dq")]

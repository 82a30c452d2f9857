"""What a 👎 says: why the answer missed, stored once; "다른 질문이었음" reaches the secretariat."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest

from bot import cli
from testing.harness import RunningBot, bot_settings, running_bot

GROUP = -1001950
ADMIN = 7990


@pytest.fixture
async def desk(tg, tmp_path: Path, real_index, database_url: str):
    settings = bot_settings(tg, tmp_path, database_url=database_url, secretariat_chat_id=GROUP,
                            admin_user_ids=frozenset({ADMIN}))
    async with running_bot(tg, settings, real_index) as bot:
        bot.member = tg.user(7901, "김사무")
        bot.group = tg.group(GROUP, "사무국", members=[bot.member])
        yield bot


async def thumbs_down(bot: RunningBot, user, text: str):
    """Ask, press 👎 on the answer; the thanks that asks why."""
    bot.tg.send_text(user, text)
    answer = await bot.tg.wait_for_message(user)
    [down] = [data for label, data in answer.buttons if label == "👎"]
    bot.tg.press(user, answer, down)
    return await bot.tg.wait_for_message(user, lambda m: m.kind == "sent")


def button(message, label: str) -> str:
    [data] = [data for text, data in message.buttons if text == label]
    return data


async def test_thumbs_down_asks_why_and_the_reason_is_stored_once(desk: RunningBot) -> None:
    tg = desk.tg
    user = tg.user(7911, "이유")
    thanks = await thumbs_down(desk, user, "국민성장펀드 총 규모는?")
    assert [label for label, _ in thanks.buttons] == [
        "틀린 답", "다른 질문이었음", "부족함", "오래된 정보", "사무국에 질문 보내기"]

    tg.press(user, thanks, button(thanks, "부족함"))
    edited = await tg.wait_for_message(
        user, lambda m: m.kind == "edited" and m.message_id == thanks.message_id)
    assert [label for label, _ in edited.buttons] == ["사무국에 질문 보내기"]
    tg.press(user, thanks, button(thanks, "틀린 답"), forged=True)  # a stale client
    await tg.wait_until(lambda: len(tg.callback_answers) == 3)
    assert tg.callback_answers[1].text.startswith("알려 주셔서 고맙습니다")
    assert tg.callback_answers[2].text == "이미 의견을 알려 주셨습니다. 고맙습니다."
    [row] = await desk.questions()
    assert (row.feedback, row.feedback_reason) == (-1, "incomplete")
    assert await desk.followups() == [] and tg.messages_to(desk.group) == []

    stranger = tg.user(7912, "남")
    group = tg.group(-4020, "팀", members=[user, stranger])
    tg.send_text(user, f"@{tg.bot_username} 국민성장펀드 규모", chat=group)
    answer = await tg.wait_for_message(group)
    tg.press(user, answer, button(answer, "👎"))
    asked_why = await tg.wait_for_message(group, lambda m: m.kind == "sent")
    tg.press(stranger, asked_why, button(asked_why, "오래된 정보"))
    await tg.wait_until(lambda: len(tg.callback_answers) == 5)
    assert tg.callback_answers[-1].show_alert, "only the asker says why"
    assert (await desk.questions())[-1].feedback_reason is None


async def test_another_question_after_thumbs_down_reaches_the_secretariat_once(
        desk: RunningBot) -> None:
    tg = desk.tg
    user = tg.user(7913, "다른질문", username="other_q")
    thanks = await thumbs_down(desk, user, "초저리 대출 지원도 하나요?")
    pressed = tg.press(user, thanks, button(thanks, "다른 질문이었음"))
    sent = await tg.wait_for_message(user, lambda m: m.kind == "sent")
    [followup] = await desk.followups()
    assert f"접수번호 {followup.id}" in sent.text and followup.reason == "feedback"
    post = await tg.wait_for_message(desk.group)
    assert f"#{followup.id}" in post.text and "다른 질문이었음" in post.text
    assert "초저리 대출 지원도 하나요?" in post.text and "@other_q" in post.text
    [row] = await desk.questions()
    assert (row.feedback, row.feedback_reason) == (-1, "other_question")

    tg.redeliver_press(pressed)
    tg.press(user, thanks, button(thanks, "사무국에 질문 보내기"), forged=True)
    await tg.wait_until(lambda: len(tg.callback_answers) == 3)
    assert f"접수번호 {followup.id}" in tg.callback_answers[-1].text
    app = desk.app
    await tg.wait_until(lambda: tg.pending_updates == 0 and app.update_queue.empty()
                        and app.update_processor.current_concurrent_updates == 0)
    assert len([m for m in tg.messages_to(desk.group) if m.kind == "sent"]) == 1
    assert len(await desk.followups()) == 1


async def test_the_most_disliked_answers_and_why_show_in_kb_stats_and_the_report(
        desk: RunningBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tg = desk.tg
    for user_id, reason in ((7921, "오래된 정보"), (7922, "다른 질문이었음"), (7923, None)):
        user = tg.user(user_id, "싫어요")
        thanks = await thumbs_down(desk, user, "국민성장펀드 총 규모는?")
        if reason is not None:
            tg.press(user, thanks, button(thanks, reason))
    await tg.wait_until(lambda: len(tg.callback_answers) == 5)
    await tg.wait_for_message(desk.group)  # "다른 질문이었음" sent the question on
    shown = "• fund-size (👎 3: 다른 질문이었음 1 · 오래된 정보 1 · 이유 없음 1)"

    admin = tg.user(ADMIN, "관리자")
    tg.send_text(admin, "/kb")
    assert shown in (await tg.wait_for_message(admin)).text
    tg.send_text(desk.member, "/stats", chat=desk.group)
    stats = await tg.wait_for_message(desk.group, lambda m: "통계" in m.text)
    assert "👎가 많은 답변과 이유\n" + shown in stats.text

    monkeypatch.setenv("DATABASE_URL", desk.settings.database_url)
    monkeypatch.setenv("SPOOL_PATH", str(tmp_path / "cli-spool.jsonl"))
    out = tmp_path / "report.html"
    today = dt.datetime.now(dt.UTC).date()
    assert await asyncio.to_thread(cli.main, [
        "export", "--format", "html", "--since", (today - dt.timedelta(days=1)).isoformat(),
        "--out", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    assert ('<tr><td><code>fund-size</code></td><td class="num">3</td>'
            "<td>다른 질문이었음 1 · 오래된 정보 1 · 이유 없음 1</td></tr>") in html

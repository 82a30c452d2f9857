"""Typing during /check: what the knowledge answers is answered, with the way back to the check;
anything else was meant for the check, which shows its step again with its buttons. The fields
it offers are the alliance's, from knowledge/eligibility.yaml's one list of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.eligibility.loading import rules_of
from index import KnowledgeInvalid, load_knowledge
from testing.harness import RunningBot, bot_settings, running_bot
from tests.conftest import KNOWLEDGE

GROUP = -1001650


@pytest.fixture
async def desk(tg, tmp_path: Path, real_index, database_url: str):
    settings = bot_settings(tg, tmp_path, database_url=database_url, secretariat_chat_id=GROUP)
    async with running_bot(tg, settings, real_index) as bot:
        bot.member = tg.user(7651, "박사무")
        bot.group = tg.group(GROUP, "국민성장펀드 사무국", members=[bot.member])
        yield bot


def data_of(message) -> list[str]:
    return [data for _, data in message.buttons]


async def test_typing_an_answer_to_a_step_shows_the_step_again_and_nothing_is_queued(
        desk: RunningBot) -> None:
    tg = desk.tg
    user = tg.user(7652, "조선사")
    tg.send_text(user, "/check")
    first = await tg.wait_for_message(user)
    assert "ck:a:field:ai" in data_of(first)

    tg.send_text(user, "조선 기자재예요")
    again = await tg.wait_for_message(user, lambda m: m.kind == "sent")
    assert again.text.startswith("🧭 지원 방식 확인이 진행 중입니다.")
    assert "회사의 주된 사업 분야는 무엇인가요?" in again.text
    assert data_of(again) == data_of(first), "the same step, with its buttons"
    old = await tg.wait_for_message(user, lambda m: m.kind == "edited")
    assert old.message_id == first.message_id and old.buttons == []

    # The step asked again is the one the check goes on from.
    tg.press(user, again, "ck:a:field:other")
    step = await tg.wait_for_message(
        user, lambda m: m.kind == "edited" and m.message_id == again.message_id)
    assert "2/" in step.text and "자금을 어디에 쓰시려고" in step.text
    assert await desk.followups() == [], "a word meant for the check is not a question to queue"


async def test_a_question_during_the_check_is_answered_with_a_button_back_to_it(
        desk: RunningBot) -> None:
    tg = desk.tg
    user = tg.user(7653, "질문자")
    tg.send_text(user, "/check")
    first = await tg.wait_for_message(user)

    tg.send_text(user, "국민성장펀드 총 규모는?")
    reply = await tg.wait_for_message(user)
    assert "150조원" in reply.text
    assert ("↩ 확인 계속하기", "ck:resume") in reply.buttons

    tg.press(user, reply, "ck:resume")
    resumed = await tg.wait_for_message(user, lambda m: m.kind == "sent")
    assert "1/" in resumed.text and data_of(resumed) == data_of(first)
    assert not resumed.text.startswith("🧭 지원 방식 확인이 진행 중입니다."), "asked, not scolded"

    tg.send_text(user, "/cancel")
    await tg.wait_for_message(user, lambda m: "그만두었습니다" in m.text)
    tg.send_text(user, "국민성장펀드 총 규모는?")
    after = await tg.wait_for_message(user, lambda m: m.kind == "sent" and "150조원" in m.text)
    assert "ck:resume" not in data_of(after)


def test_the_field_step_offers_the_alliances_fields_from_the_one_list_of_them(
        knowledge_copy: Path) -> None:
    """조선·해양, 물류, 가전 … are the alliance's fields: the field step takes them from the
    sub-alliance step, so a field added there is offered in both."""
    rules = rules_of(load_knowledge(KNOWLEDGE))
    field = [o.label for o in rules.step("field").options]
    assert field[:6] == ["AI", "반도체", "바이오", "로봇", "방산", "미래차·모빌리티"]
    assert field[-1] == "기타"
    assert {"자율운항선박(조선·해양)", "AI 유통·물류", "AI 가전", "AI 팩토리"} <= set(field)
    assert "AI 반도체" not in field, "the same field as 반도체 is offered once"

    path = knowledge_copy / "eligibility.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace(
        "      - {key: ai-semiconductor, label: AI 반도체, same_as: semiconductor, "
        "label_en: AI semiconductors}",
        "      - {key: ai-semiconductor, label: AI 반도체, same_as: semiconductor, "
        "label_en: AI semiconductors}\n"
        "      - {key: ai-shipping, label: AI 해운, label_en: AI shipping}"), encoding="utf-8")
    field = [o.label for o in rules_of(load_knowledge(knowledge_copy)).step("field").options]
    assert field[-2:] == ["AI 해운", "기타"]

    path.write_text(text.replace("same_as: robot", "same_as: robots"), encoding="utf-8")
    with pytest.raises(KnowledgeInvalid) as caught:
        rules_of(load_knowledge(knowledge_copy))
    assert "option 'humanoid' is same_as 'robots', which step 'field' does not offer" in str(
        caught.value)

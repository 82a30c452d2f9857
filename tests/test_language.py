"""English users get an English bot: the welcome, the menus, the buttons, the check, the notices
and what the secretariat sends them; the language is Telegram's, or the one they write in,
remembered, and /lang switches it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.followups import event_label, question_label, reason_label, status_label
from bot.keyboards import pack, pattern, unpack
from bot.knowledge import load_knowledge
from bot.replies import question_in
from bot.storage.models import EventKind, FollowUpReason, FollowUpStatus, QuestionStatus
from testing.harness import RunningBot, bot_settings, running_bot
from tests.conftest import KNOWLEDGE, PROJECT

GROUP = -1001700
HANGUL = re.compile(r"[가-힣]")
TEMPLATES = PROJECT / "bot" / "templates"


def test_every_korean_template_has_an_english_twin() -> None:
    korean = {p.name for p in (TEMPLATES / "ko").iterdir()}
    english = {p.name for p in (TEMPLATES / "en").iterdir()}
    assert sorted(korean - english) == []
    assert sorted(english - korean) == []


def test_callback_data_reads_back_as_it_was_packed_and_refuses_what_would_not_fit() -> None:
    data = pack("fr", 12, "other_question")
    press = unpack(data)
    assert (data, press.kind, press.id(0), press.field(1)) == (
        "fr:12:other_question", "fr", 12, "other_question")
    assert re.match(pattern("fr", r"\d+", "[a-z_]+"), data)
    assert unpack("fb:").id(0) is None and unpack(None).kind == ""
    with pytest.raises(ValueError, match="64 bytes"):
        pack("a", "x" * 70)
    with pytest.raises(ValueError, match="may not hold"):
        pack("a", "b:c")


@pytest.fixture
async def desk(tg, tmp_path: Path, real_index, database_url: str):
    settings = bot_settings(tg, tmp_path, database_url=database_url, secretariat_chat_id=GROUP)
    async with running_bot(tg, settings, real_index) as bot:
        bot.member = tg.user(7701, "김사무")
        bot.group = tg.group(GROUP, "국민성장펀드 사무국", members=[bot.member])
        yield bot


def labels(message) -> list[str]:
    return [text for text, _ in message.buttons]


async def test_an_english_user_gets_the_welcome_menus_and_check_in_english(
        desk: RunningBot) -> None:
    tg = desk.tg
    user = tg.user(7702, "Jane", language_code="en")

    tg.send_text(user, "/start")
    welcome = await tg.wait_for_message(user)
    assert welcome.text.startswith("Hello, Jane!") and "What I store" in welcome.text
    assert "Fund overview" in labels(welcome) and "M.AX Alliance" in labels(welcome)
    assert "What is the National Growth Fund?" in labels(welcome)
    assert "🙋 Ask the secretariat" in labels(welcome)

    tg.press(user, welcome, "t:fund")
    topic = await tg.wait_for_message(user)
    assert topic.text.startswith("Fund overview — ") and "Press one" in topic.text
    tg.press(user, welcome, "a:fund-overview")
    answer = await tg.wait_for_message(user)
    assert answer.text.startswith("The National Growth Fund (국민성장펀드) is")
    assert "Related questions" in answer.text
    related = [line for line in answer.text.splitlines() if line.startswith("• ")]
    assert related and all(line.endswith("?") for line in related), related

    tg.send_text(user, "/help")
    help_text = (await tg.wait_for_message(user)).text
    assert "How to use me" in help_text and "/lang" in help_text
    assert "/pending" not in help_text

    tg.send_text(user, "/check")
    step = await tg.wait_for_message(user)
    assert step.text.startswith("🧭 Support check · 1/")
    assert "Skip ⏭" in labels(step)
    tg.send_text(user, "/cancel")
    assert (await tg.wait_for_message(user)).kind == "edited"  # the step loses its buttons
    assert "cancelled" in (await tg.wait_for_message(user)).text

    tg.send_text(user, "/nonsense")
    assert "I do not know that command" in (await tg.wait_for_message(user)).text
    assert tg.parse_errors == []


async def test_the_language_of_the_question_is_remembered_and_lang_switches_it(
        desk: RunningBot) -> None:
    tg = desk.tg
    user = tg.user(7703, "민수")  # a Korean app

    tg.send_text(user, "How big is the National Growth Fund?")
    answer = await tg.wait_for_message(user)
    assert "150 trillion won" in answer.text and "Related questions" in answer.text
    assert not any(HANGUL.search(label) for label in labels(answer) if label not in "👍👎")

    tg.send_text(user, "/start")  # remembered: they wrote in English
    assert (await tg.wait_for_message(user)).text.startswith("Hello, 민수!")

    tg.send_text(user, "/lang")
    choice = await tg.wait_for_message(user)
    assert labels(choice) == ["한국어", "English"]
    tg.press(user, choice, "lang:ko")
    assert "한국어로 안내합니다" in (await tg.wait_for_message(user)).text
    tg.send_text(user, "/start")
    assert (await tg.wait_for_message(user)).text.startswith("안녕하세요, 민수님!")

    tg.send_text(user, "/lang en")
    assert "English from now on" in (await tg.wait_for_message(user)).text
    tg.send_text(user, "/topics")
    topics = await tg.wait_for_message(user)
    assert topics.text.startswith("Choose a topic.") and "Fund overview" in labels(topics)

    # Korean around an acronym is Korean: the answer, and what is remembered.
    tg.send_text(user, "M.AX 뜻")
    answer = await tg.wait_for_message(user)
    assert answer.text.startswith("M.AX는") and "제조업" in answer.text, answer.text
    assert "Related questions" not in answer.text
    tg.send_text(user, "/start")
    assert (await tg.wait_for_message(user)).text.startswith("안녕하세요, 민수님!")


async def test_an_english_asker_hears_from_the_secretariat_in_english(desk: RunningBot) -> None:
    tg = desk.tg
    user = tg.user(7704, "Tom", language_code="en")
    tg.send_text(user, "What is the interest rate of the low-rate loan?")
    reply = await tg.wait_for_message(user)
    post = await tg.wait_for_message(desk.group)
    [followup] = await desk.followups()
    assert "secretariat" in reply.text and "접수번호" not in reply.text
    assert "답장" in post.text, "the secretariat's group reads Korean"

    tg.send_text(desk.member, "금리는 아직 확정 전입니다.", chat=desk.group, reply_to=post)
    delivered = await tg.wait_for_message(user)
    assert delivered.text.startswith(f"📨 Answer from the secretariat · reference {followup.id}")
    assert "금리는 아직 확정 전입니다." in delivered.text

    tg.send_text(user, "What is the loan limit per company?")
    await tg.wait_for_message(user)
    second = await tg.wait_for_message(desk.group, lambda m: f"#{followup.id + 1}" in m.text)
    tg.press(desk.member, second, pack("sc", followup.id + 1))
    ask = await tg.wait_for_message(desk.group, lambda m: "종료 사유" in m.text)
    tg.press(desk.member, ask, pack("sr", followup.id + 1, "undecided"))
    closed = await tg.wait_for_message(user)
    assert "closed" in closed.text and not HANGUL.search(closed.text.split("\n")[0])


def test_every_status_and_event_of_a_followup_has_its_words_in_both_languages() -> None:
    for language in ("ko", "en"):
        statuses = [status_label(status, language) for status in FollowUpStatus]
        events = [event_label(kind, language) for kind in EventKind]
        assert all(statuses) and len(set(statuses)) == len(statuses)
        assert all(events) and len(set(events)) == len(events)
    assert [status_label(s) for s in FollowUpStatus] == ["열림", "답변 완료", "종료"]
    assert status_label(FollowUpStatus.CLOSED, "en") == "closed"
    assert event_label(EventKind.GAP) == "지식베이스 공백 표시"


def test_every_question_status_and_followup_reason_has_its_words_in_both_languages() -> None:
    for language in ("ko", "en"):
        questions = [question_label(status, language) for status in QuestionStatus]
        reasons = [reason_label(reason, language) for reason in FollowUpReason]
        assert all(questions) and len(set(questions)) == len(questions), questions
        assert all(reasons) and len(set(reasons)) == len(reasons), reasons
    assert question_label(QuestionStatus.DIRECT) == "사무국 직접 문의"
    assert reason_label(FollowUpReason.FEEDBACK, "en") == "👎 on an answer"


def test_every_faq_entry_reads_as_an_english_question_to_english_readers() -> None:
    """Buttons and related questions show an entry by one of its English phrasings: a
    question, not a keyword alternate ("KEIT", "alliance goals") or one with Korean in it
    ("M.AX 뜻")."""
    knowledge = load_knowledge(KNOWLEDGE)
    shown = {e.id: question_in(e, "en") for e in knowledge.entries}
    assert [(i, q) for i, q in shown.items() if not q.endswith("?") or HANGUL.search(q)] == []

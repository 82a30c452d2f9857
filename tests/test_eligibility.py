"""The guided eligibility check (/check): walked with buttons through the Bot API stand-in."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from sqlmodel import select

from bot.cli import main
from bot.storage.models import BotState, FollowUpEvent
from testing.harness import RunningBot, bot_settings, running_bot
from testing.standin import BotApiStandIn
from testing.standin.records import BotMessage
from tests.conftest import write_knowledge
from tests.test_delivery import eventually

GROUP = -1001600


@pytest.fixture
async def desk(tg, tmp_path: Path, real_index, database_url: str):
    """The bot with a secretariat group that has one member."""
    settings = bot_settings(tg, tmp_path, database_url=database_url, secretariat_chat_id=GROUP)
    async with running_bot(tg, settings, real_index) as bot:
        bot.member = tg.user(7701, "박사무", username="desk_park")
        bot.group = tg.group(GROUP, "국민성장펀드 사무국", members=[bot.member])
        yield bot


def data_of(message: BotMessage) -> list[str]:
    return [data for _, data in message.buttons]


async def press(tg: BotApiStandIn, user, message: BotMessage, data: str) -> BotMessage:
    """Press a button of the check and return the check's message as it is next edited."""
    tg.press(user, message, data)
    return await tg.wait_for_message(
        user, lambda m: m.kind == "edited" and m.message_id == message.message_id)


async def walk(tg: BotApiStandIn, user, message: BotMessage, *choices: str) -> BotMessage:
    """Answer steps in order: "step:option", or "step:-" to skip it."""
    for choice in choices:
        step, option = choice.split(":")
        data = f"ck:k:{step}" if option == "-" else f"ck:a:{step}:{option}"
        message = await press(tg, user, message, data)
    return message


async def test_a_full_check_from_start_names_the_methods_and_the_entries_behind_them(
        desk: RunningBot) -> None:
    tg = desk.tg
    user = tg.user(7801, "최대표", username="ceo_choi")
    tg.send_text(user, "/start")
    welcome = await tg.wait_for_message(user)
    assert "ck:start" in data_of(welcome)
    tg.press(user, welcome, "ck:start")
    step = await tg.wait_for_message(user)
    assert "1/6" in step.text and "사업 분야" in step.text
    assert {"ck:a:field:ai", "ck:a:field:mobility", "ck:a:field:other",
            "ck:k:field"} <= set(data_of(step))
    assert ("건너뛰기 ⏭", "ck:k:field") in step.buttons

    step = await press(tg, user, step, "ck:a:field:ai")
    assert "2/6" in step.text and "자금을 어디에" in step.text and "사업 분야 AI" in step.text
    step = await walk(tg, user, step, "purpose:equity", "size:1b-10b", "alliance:member")
    assert "5/6" in step.text and "어느 분과" in step.text
    assert "ck:a:sub-alliance:humanoid" in data_of(step)
    result = await walk(tg, user, step, "sub-alliance:humanoid", "region:non-capital")

    text = result.text
    assert "지원 방식 확인 결과" in text
    assert "사업 분야: AI" in text and "분과: 휴머노이드" in text and "지역: 비수도권" in text
    assert "✅ 직접투자 · 간접투자" in text
    assert "인프라 투·융자" not in text and "초저리 대출" not in text
    assert "40% 이상" in text and "6조 6천억원" in text and "30조원 이상" in text
    assert "한도" in text and "마감일" in text and "금리" not in text
    assert "승인된다는 뜻이 아닙니다" in text
    buttons = data_of(result)
    for entry in ("support-direct-investment", "support-indirect-investment", "industries-ai",
                  "demand-humanoid", "link-project-discovery", "industries-regional",
                  "gov-decision-process"):
        assert f"a:{entry}" in buttons
    assert "a:support-low-rate-loan" not in buttons
    assert buttons[-2:] == ["ck:consult", "ck:start"]
    assert tg.parse_errors == []

    tg.press(user, result, "a:support-direct-investment")
    entry = await tg.wait_for_message(user)
    assert "15조원" in entry.text


HANGUL = re.compile(r"[가-힣]")


def korean_in(message: BotMessage) -> list[str]:
    """The pieces of a message, its text and its buttons' labels, with Korean in them."""
    return [piece for piece in [message.text, *(text for text, _ in message.buttons)]
            if HANGUL.search(piece)]


async def test_an_english_user_runs_the_whole_check_in_english(desk: RunningBot) -> None:
    tg = desk.tg
    user = tg.user(7807, "Jane", username="jane_ceo", language_code="en")
    tg.send_text(user, "/check")
    step = await tg.wait_for_message(user)
    assert step.text.startswith("🧭 Support check · 1/6")
    assert "What is your company's main field of business?" in step.text
    assert "If none fits, choose 'Other'." in step.text, "the hint, in English"
    assert {"Semiconductors", "Future cars · mobility", "Autonomous ships (shipbuilding)",
            "Other", "Skip ⏭"} <= {text for text, _ in step.buttons}
    assert korean_in(step) == []

    tg.send_text(user, "We build ship parts")  # typed, not pressed: reminded, in English
    again = await tg.wait_for_message(user, lambda m: m.kind == "sent")
    assert again.text.startswith("🧭 The support check is still running.")
    assert "What is your company's main field of business?" in again.text
    assert korean_in(again) == []
    await tg.wait_for_message(user, lambda m: m.kind == "edited")  # the old step's buttons go

    step = await press(tg, user, again, "ck:a:field:ai")
    assert "What will the money be used for?" in step.text
    assert "So far: Field of business AI" in step.text
    assert "Equity investment for growth" in [text for text, _ in step.buttons]
    seen = [step]
    for choice in ("purpose:equity", "size:1b-10b", "alliance:member", "sub-alliance:humanoid"):
        step = await walk(tg, user, step, choice)
        seen.append(step)
    assert "Which sub-alliance are you in?" in seen[3].text
    assert "Where are your business sites or the project?" in seen[4].text
    assert all(korean_in(s) == [] for s in seen), [korean_in(s) for s in seen]
    result = await walk(tg, user, step, "region:non-capital")

    text = result.text
    assert text.startswith("🧭 Support check result")
    for line in ("• Field of business: AI", "• Use of the money: Equity investment for growth",
                 "• Amount needed: 1-10 billion won", "• M.AX Alliance: Yes, we are a member",
                 "• Sub-alliance: Humanoids", "• Region: Outside the Seoul area",
                 "✅ Direct investment · Indirect investment"):
        assert line in text
    assert "15 trillion won of direct and 35 trillion won of indirect investment" in text
    assert "the humanoid field's demand came to 6.6 trillion won" in text
    assert "40% or more of its money on regional projects" in text
    assert "The limits per company and per project" in text
    assert "does not mean your company qualifies" in text
    assert korean_in(result) == []
    assert "a:support-direct-investment" in data_of(result)

    tg.press(user, result, "ck:consult")  # what would be shared, in English; Korean to the group
    consent = await tg.wait_for_message(user, lambda m: m.kind == "sent")
    assert "• Sub-alliance: Humanoids" in consent.text and "Jane (@jane_ceo)" in consent.text
    assert "the secretariat gets them in Korean" in consent.text
    assert korean_in(consent) == []
    tg.press(user, consent, "ck:send")
    sent = await tg.wait_for_message(user)
    assert "reference" in sent.text and korean_in(sent) == []
    post = await tg.wait_for_message(desk.group)
    assert "• 분과: 휴머노이드" in post.text and "• 지역: 비수도권" in post.text
    assert tg.parse_errors == []


async def test_an_eligibility_question_gets_the_answer_and_a_button_to_the_check(
        desk: RunningBot) -> None:
    tg = desk.tg
    user = tg.user(7802, "정이사")
    tg.send_text(user, "우리 회사도 국민성장펀드 지원을 받을 수 있나요?")
    reply = await tg.wait_for_message(user)
    assert "12개" in reply.text and "ck:start" in data_of(reply)
    tg.send_text(user, "국민성장펀드 규모는?")
    other = await tg.wait_for_message(user)
    assert "ck:start" not in data_of(other)
    tg.press(user, reply, "ck:start")
    assert "사업 분야" in (await tg.wait_for_message(user)).text


async def test_a_declined_eligibility_question_is_queued_and_offers_the_check(
        desk: RunningBot) -> None:
    """The criteria for a kind of company are not published: the question goes to the
    secretariat, and the check walks the asker through what is."""
    tg = desk.tg
    user = tg.user(7804, "중소")
    tg.send_text(user, "중소기업도 지원 자격이 되나요?")
    reply = await tg.wait_for_message(user)
    assert "사무국에 전달" in reply.text and "ck:start" in data_of(reply)
    assert "우리 회사도 국민성장펀드 지원을 받을 수 있나요?" in reply.text
    tg.press(user, reply, "ck:start")
    assert "사업 분야" in (await tg.wait_for_message(user)).text


async def test_a_button_pressed_before_the_step_was_confirmed_sent_goes_on_with_the_check(
        desk: RunningBot) -> None:
    """Telegram shows the step before the bot hears back that it was sent; a press in that
    moment is the check's next step, not a stale button."""
    tg = desk.tg
    user = tg.user(7808, "윤대표", username="ceo_yoon")
    tg.hold("sendMessage", delivered=True)
    tg.send_text(user, "/check")
    step = await tg.wait_for_message(user)
    tg.press(user, step, "ck:a:field:semiconductor")
    await tg.wait_until(lambda: tg.pending_updates == 0)
    await asyncio.sleep(0.5)  # the bot has the press while its step is still unconfirmed
    tg.release("sendMessage")
    following = await tg.wait_for_message(
        user, lambda m: m.kind == "edited" and m.message_id == step.message_id)
    assert "2/6" in following.text and "반도체" in following.text
    assert not [a for a in tg.callback_answers if a.show_alert]


async def test_skipped_steps_and_a_step_not_asked(desk: RunningBot) -> None:
    tg = desk.tg
    user = tg.user(7803, "스킵")
    tg.send_text(user, "/check")
    step = await tg.wait_for_message(user)
    step = await walk(tg, user, step, "field:-", "purpose:-", "size:-")
    assert "사업 분야 건너뜀" in step.text
    step = await press(tg, user, step, "ck:a:alliance:not-member")
    assert "5/5" in step.text and "어느 지역" in step.text, "no sub-alliance for non-members"
    result = await press(tg, user, step, "ck:a:region:capital")
    text = result.text
    assert "사업 분야: 건너뜀" in text and "분과" not in text
    assert "네 가지 지원 방식을 모두" in text
    assert "✅ 직접투자 · 간접투자 · 인프라 투·융자 · 초저리 대출" in text
    assert "12개 첨단전략산업에 드는지" in text and "새로 참여하는 방법" in text
    assert "금리 수준" in text
    assert {"a:support-methods", "a:industries-strategic-what"} <= set(data_of(result))


async def test_cancel_ends_the_check_and_forgets_the_answers(desk: RunningBot) -> None:
    tg = desk.tg
    user = tg.user(7804, "취소")
    tg.send_text(user, "/check")
    first = await tg.wait_for_message(user)
    await press(tg, user, first, "ck:a:field:bio")
    tg.send_text(user, "/cancel")
    told = await tg.wait_for_message(user, lambda m: m.kind == "sent")
    assert "그만두었습니다" in told.text
    unbuttoned = await tg.wait_for_message(user, lambda m: m.kind == "edited")
    assert unbuttoned.message_id == first.message_id and not unbuttoned.buttons
    assert "eligibility" not in desk.app.user_data.get(user.id, {})
    tg.send_text(user, "/cancel")
    assert "진행 중인 확인이 없습니다" in (await tg.wait_for_message(user)).text

    tg.send_text(user, "/check")  # a new check; an older check's buttons no longer count
    second = await tg.wait_for_message(user)
    tg.send_text(user, "/check")
    third = await tg.wait_for_message(user)
    tg.press(user, second, "ck:a:field:ai")
    [alert] = await tg.wait_until(lambda: [a for a in tg.callback_answers if a.show_alert])
    assert "끝났습니다" in alert.text
    await press(tg, user, third, "ck:a:field:ai")


async def test_a_check_continues_after_the_bot_restarts(tg, tmp_path: Path, real_index,
                                                         database_url: str) -> None:
    settings = bot_settings(tg, tmp_path, database_url=database_url)
    user = tg.user(7805, "재시작")
    async with running_bot(tg, settings, real_index) as bot:
        tg.send_text(user, "/check")
        step = await tg.wait_for_message(user)
        step = await walk(tg, user, step, "field:robot", "purpose:facility")
        assert "필요한 자금은" in step.text
    async with bot.database.session() as session:
        kinds = {row.kind for row in (await session.exec(select(BotState))).all()}
    assert kinds == {"user", "conversation:eligibility"}

    async with running_bot(tg, settings, real_index) as restarted:
        step = await walk(tg, user, step, "size:over-100b")
        assert "4/6" in step.text and "사업 분야 로봇" in step.text
        result = await walk(tg, user, step, "alliance:member", "sub-alliance:ai-factory",
                            "region:-")
        text = result.text
        assert "✅ 인프라 투·융자 · 초저리 대출" in text and "✅ 인프라 투·융자\n" in text
        assert "데이터·컴퓨팅·실증 인프라" in text and "1조 3천억원" in text
        assert "금리 수준" in text and "필요 규모: 1,000억원 이상" in text
        assert "a:link-shared-infrastructure" in data_of(result)
        tg.send_text(user, "/cancel")
        await tg.wait_for_message(user)
    async with restarted.database.session() as session:
        rows = (await session.exec(select(BotState))).all()
    assert rows == [], "a finished check leaves nothing behind"


async def test_a_consultation_request_reaches_the_group_and_its_reply_the_user(
        desk: RunningBot) -> None:
    tg = desk.tg
    user = tg.user(7806, "한대표", username="ceo_han")
    tg.send_text(user, "/check")
    step = await tg.wait_for_message(user)
    result = await walk(tg, user, step, "field:semiconductor", "purpose:loan", "size:10b-100b",
                        "alliance:member", "sub-alliance:ai-semiconductor", "region:capital")
    assert "✅ 초저리 대출" in result.text

    tg.press(user, result, "ck:consult")
    consent = await tg.wait_for_message(user, lambda m: m.kind == "sent")
    assert "동의하고 보내기" in str(consent.buttons) and "한대표 (@ceo_han)" in consent.text
    assert "사업 분야: 반도체" in consent.text and "사무국의 텔레그램 그룹에" in consent.text
    tg.press(user, consent, "ck:keep")
    kept = await tg.wait_for_message(user)
    assert "보내지 않았습니다" in kept.text and not kept.buttons
    assert await desk.followups() == []

    tg.press(user, result, "ck:consult")
    consent = await tg.wait_for_message(user, lambda m: m.kind == "sent")
    tg.press(user, consent, "ck:send")
    sent = await tg.wait_for_message(user)
    [followup] = await desk.followups()
    assert f"접수번호 {followup.id}" in sent.text and followup.reason == "consultation"
    [question] = await desk.questions()
    assert question.status == "consultation" and question.message_id == result.message_id

    post = await tg.wait_for_message(desk.group)
    assert f"상담 요청 #{followup.id}" in post.text and "한대표 (@ceo_han)" in post.text
    for line in ("• 사업 분야: 반도체", "• 자금 용도: 대출", "• 필요 규모: 100억~1,000억원",
                 "• M.AX 얼라이언스: 참여하고 있음", "• 분과: AI 반도체", "• 지역: 수도권",
                 "맞을 수 있는 지원 방식: 초저리 대출"):
        assert line in post.text
    assert f"sc:{followup.id}" in data_of(post)

    tg.send_text(desk.member, "초저리 대출 상담은 다음 주 설명회에서 <안내> 드리겠습니다.",
                 chat=desk.group, reply_to=post)
    delivered = await tg.wait_for_message(user)
    assert "사무국 답변" in delivered.text and f"접수번호 {followup.id}" in delivered.text
    assert "<안내> 드리겠습니다" in delivered.text and "지원 방식 확인" in delivered.text
    assert delivered.reply_to == result.message_id
    confirmed = await tg.wait_for_message(desk.group)
    assert "전달했습니다" in confirmed.text and "한대표" in confirmed.text
    [followup] = await desk.followups()
    assert followup.status == "answered" and followup.answered_by == desk.member.id

    async def events_once_delivered() -> list[str] | None:
        async with desk.database.session() as session:
            kinds = list((await session.exec(
                select(FollowUpEvent.kind).order_by(FollowUpEvent.id))).all())
        return kinds if "delivered" in kinds else None

    # The "delivered" event is written once the group's confirmation is out, so just after
    # the group sees it: wait for the row, however busy the machine.
    kinds = await eventually(events_once_delivered, timeout=60)
    assert kinds == ["consultation", "posted", "answer", "delivered"]
    assert tg.parse_errors == []


# --- broken rules: refused by `maxbot check` and /reload with their line -------------------

RULES = """\
offer_check_for: [fund-size]
steps:
  - key: purpose
    label: 자금 용도
    label_en: Use of the money
    question: 자금을 어디에 쓰시나요?
    question_en: What is the money for?
    options:
      - {key: equity, label: 지분투자, label_en: Equity}
      - {key: loan, label: 대출, label_en: A loan}
methods:
  loan: {label: 초저리 대출, label_en: Low-rate loans, entries: [fund-loan]}
rules:
  - when: {purpose: [loan]}
    methods: [loan]
    reason: 대출이면 초저리 대출이 가까운 방식입니다.
    reason_en: For a loan, low-rate loans are the closest kind.
    entries: [fund-loan]
open_questions:
  - text: 금리 수준
    text_en: The interest rate
wording:
  never_say: [승인됩니다, will be approved]
"""


def check(root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["check", "--knowledge-dir", str(root)])
    return code, capsys.readouterr().out


@pytest.mark.parametrize(("old", "new", "line", "message"), [
    ("    entries: [fund-loan]\nopen", "    entries: [fund-lone]\nopen", 14,
     "rule: unknown FAQ entry 'fund-lone'"),
    ("when: {purpose: [loan]}", "when: {purpos: [loan]}", 14,
     "rule: when: unknown step 'purpos'"),
    ("when: {purpose: [loan]}", "when: {purpose: [lone]}", 14,
     "rule: when: unknown option 'lone' of step 'purpose'"),
    ("    reason: 대출이면 초저리 대출이 가까운 방식입니다.\n", "", 14, "rule has no reason"),
    ("    label: 자금 용도\n", "", 3, "step 'purpose' has no label"),
    ("methods: [loan]", "methods: [loans]", 14, "rule: unknown method 'loans'"),
    ("가까운 방식입니다", "승인됩니다", 14, "says '승인됩니다'"),
    ("closest kind", "kind that will be approved", 14, "says 'will be approved'"),
    # Every text has its English twin.
    ("    label_en: Use of the money\n", "", 3,
     "step 'purpose' has no label_en (the English twin of label)"),
    ("    question_en: What is the money for?\n", "", 3, "step 'purpose' has no question_en"),
    ("    question_en: What is the money for?\n",
     "    question_en: What is the money for?\n    hint: 대략이면 됩니다.\n", 3,
     "step 'purpose': hint and hint_en (its English twin) go together"),
    (", label_en: A loan}", "}", 10, "step 'purpose': option 'loan' has no label_en"),
    ("label_en: Low-rate loans, ", "", 12, "method 'loan' has no label_en"),
    ("    reason_en: For a loan, low-rate loans are the closest kind.\n", "", 14,
     "rule has no reason_en (the English twin of reason)"),
    ("    text_en: The interest rate\n", "", 20, "open question has no text_en"),
    ("      - {key: loan, label: 대출, label_en: A loan}",
     "      - {key: loan, label: [대출}", 10, "invalid YAML"),
    ("    options:\n      - {key: equity", "    also_offer: {step: purposes}\n    options:\n"
     "      - {key: equity", 8, "step 'purpose': also_offer names 'purposes', which is not "
     "another step"),
    ("    options:\n      - {key: equity", "    also_offer: {step: purpose, befor: loan}\n"
     "    options:\n      - {key: equity", 8, "step 'purpose': unknown key 'befor'"),
    (", label_en: A loan}", ", label_en: A loan, same_as: Loan}", 10,
     "step 'purpose': option 'loan': key 'Loan' must be"),
])
def test_maxbot_check_refuses_broken_rules_with_their_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, line: int,
        message: str) -> None:
    root = write_knowledge(tmp_path / "kb", {"eligibility.yaml": RULES})
    code, out = check(root, capsys)
    assert code == 0, out
    assert "steps" not in out
    broken = RULES.replace(old, new)
    assert broken != RULES
    (root / "eligibility.yaml").write_text(broken, encoding="utf-8")
    code, out = check(root, capsys)
    assert code == 1
    assert f"{root / 'eligibility.yaml'}:{line}:" in out and message in out, out


async def test_reload_refuses_broken_rules_with_their_line_and_picks_up_fixed_ones(
        live: RunningBot) -> None:
    tg = live.tg
    rules = live.settings.knowledge_dir / "eligibility.yaml"
    text = rules.read_text(encoding="utf-8")
    before = live.services.index.version
    broken = text.replace("entries: [industries-regional]", "entries: [industries-regions]")
    rules.write_text(broken, encoding="utf-8")
    line = next(n for n, row in enumerate(broken.splitlines(), start=1)
                if "{region: [non-capital]}" in row)
    tg.send_text(live.admin, "/reload")
    refused = await tg.wait_for_message(live.admin)
    assert "오류가 있어 새로 읽지 않았습니다" in refused.text
    assert f"{rules}:{line}: rule: unknown FAQ entry 'industries-regions'" in refused.text
    assert live.services.index.version == before

    tg.send_text(live.admin, "/check")  # the last good rules still serve
    assert "회사의 주된 사업 분야는" in (await tg.wait_for_message(live.admin)).text

    rules.write_text(text.replace("회사의 주된 사업 분야는", "귀사의 주력 사업 분야는"),
                     encoding="utf-8")
    tg.send_text(live.admin, "/reload")
    assert "→" in (await tg.wait_for_message(live.admin)).text
    assert live.services.index.version != before
    tg.send_text(live.admin, "/check")
    assert "귀사의 주력 사업 분야는" in (await tg.wait_for_message(live.admin)).text


def test_a_broken_step_is_reported_once_not_again_by_each_rule_that_names_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_knowledge(tmp_path / "kb", {"eligibility.yaml": RULES.replace(
        "    label: 자금 용도\n", "").replace("methods: [loan]", "methods: [loan]\n    extra: 1")})
    code, out = check(root, capsys)
    assert code == 1
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    rules = root / "eligibility.yaml"
    assert len(errors) == 2, out
    assert f"{rules}:3: step 'purpose' has no label" in errors[0]
    assert (f"{rules}:13: rule: unknown key 'extra' (expected entries, methods, reason, "
            "reason_en, when)" in errors[1])

"""The secretariat's desk: follow-ups reach its group, its replies reach the askers."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
from pathlib import Path

import pytest
from sqlmodel import select, update

from bot.answering import answer
from bot.storage.models import AdminAction, FollowUp, FollowUpEvent
from index import load_index, load_knowledge
from testing.harness import RunningBot, bot_settings, running_bot

GROUP = -1001500
ADMIN = 9001


@pytest.fixture
async def desk(tg, tmp_path: Path, real_index, knowledge_copy: Path, database_url: str):
    """The bot with a secretariat group (one member) and an admin; a writable knowledge copy."""
    settings = bot_settings(tg, tmp_path, database_url=database_url, secretariat_chat_id=GROUP,
                            admin_user_ids=frozenset({ADMIN}), knowledge_dir=knowledge_copy)
    async with running_bot(tg, settings, real_index) as bot:
        bot.member = tg.user(7001, "김사무", username="kdb_desk")
        bot.group = tg.group(GROUP, "국민성장펀드 사무국", members=[bot.member])
        yield bot


async def ask_unanswerable(bot: RunningBot, user, text: str = "대출 금리가 몇 %예요?"):
    bot.tg.send_text(user, text)
    reply = await bot.tg.wait_for_message(user)
    post = await bot.tg.wait_for_message(bot.group)
    return reply, post


async def test_unanswered_question_reaches_secretariat_and_reply_reaches_user(
        desk: RunningBot) -> None:
    tg = desk.tg
    user = tg.user(7101, "이대표", username="ceo_lee")
    tg.send_text(user, "국민성장펀드 규모는?")  # an earlier, answered question
    await tg.wait_for_message(user)
    reply, post = await ask_unanswerable(desk, user)

    [followup] = await desk.followups()
    assert f"접수번호 {followup.id}" in reply.text
    assert f"#{followup.id}" in post.text and "대출 금리가 몇 %예요?" in post.text
    assert "이대표" in post.text and "@ceo_lee" in post.text and "이전 질문 1건" in post.text
    assert "봇이 찾은 가까운 항목" in post.text
    assert {data for _, data in post.buttons} == {
        f"sc:{followup.id}", f"sg:{followup.id}", f"sf:{followup.id}"}

    tg.send_text(desk.member, "초저리 대출 금리는 <아직> 확정 전입니다 & 3월에 공지 예정",
                 chat=desk.group, reply_to=post)
    delivered = await tg.wait_for_message(user)
    assert "사무국 답변" in delivered.text and f"접수번호 {followup.id}" in delivered.text
    assert "대출 금리가 몇 %예요?" in delivered.text
    assert "<아직> 확정 전입니다 & 3월에 공지 예정" in delivered.text
    confirmed = await tg.wait_for_message(desk.group)
    assert "전달했습니다" in confirmed.text and "이대표" in confirmed.text
    assert tg.parse_errors == []

    [followup] = await desk.followups()
    assert followup.status == "answered" and followup.answered_by == desk.member.id
    assert followup.answered_at is not None

    tg.send_text(desk.member, "추가로, 설명회에서도 안내합니다.", chat=desk.group, reply_to=post)
    addition = await tg.wait_for_message(user)
    assert "(추가)" in addition.text and "설명회에서도" in addition.text
    await tg.wait_for_message(desk.group)
    [followup] = await desk.followups()
    assert "설명회에서도" in followup.answer
    # The confirmation's event is written once Telegram has the confirmation.
    expected = ["posted", "answer", "delivered", "addition", "delivered"]
    for _ in range(200):
        async with desk.database.session() as session:
            kinds = list((await session.exec(
                select(FollowUpEvent.kind).order_by(FollowUpEvent.id))).all())
        if kinds == expected:
            break
        await asyncio.sleep(0.05)
    assert kinds == expected


async def test_a_reply_that_cannot_be_delivered_is_reported_and_stays_open(
        desk: RunningBot) -> None:
    tg = desk.tg
    user = tg.user(7102, "차단자")
    _, post = await ask_unanswerable(desk, user, "투자 한도가 기업당 얼마예요")
    tg.block(user)
    tg.send_text(desk.member, "기업당 한도는 아직 정해지지 않았습니다.", chat=desk.group,
                 reply_to=post)
    told = await tg.wait_for_message(desk.group)
    assert "전달하지 못했습니다" in told.text and "차단" in told.text
    [followup] = await desk.followups()
    assert followup.status == "open"


async def test_people_outside_the_secretariat_are_refused_and_the_attempt_is_logged(
        desk: RunningBot) -> None:
    tg = desk.tg
    stranger = tg.user(7103, "외부인")
    for command in ("/pending", "/stats", "/followup 1", "/tofaq 1"):
        tg.send_text(stranger, command)
        refused = await tg.wait_for_message(stranger)
        assert "사무국과 관리자만" in refused.text

    tg.send_text(desk.member, "/pending")  # a member, in a private chat
    assert "열린 문의" in (await tg.wait_for_message(desk.member)).text
    admin = tg.user(ADMIN, "관리자")
    tg.send_text(admin, "/stats")
    assert "통계" in (await tg.wait_for_message(admin)).text

    async with desk.database.session() as session:
        actions = (await session.exec(select(AdminAction).order_by(AdminAction.id))).all()
    refused = [(a.person_id, a.action) for a in actions if not a.allowed]
    assert refused == [(7103, "pending"), (7103, "stats"), (7103, "followup"), (7103, "tofaq")]
    assert {(a.person_id, a.action) for a in actions if a.allowed} == {
        (desk.member.id, "pending"), (ADMIN, "stats")}


async def test_an_admin_who_reads_english_gets_the_commands_replies_in_english_and_the_group_korean(
        desk: RunningBot) -> None:
    tg = desk.tg
    admin = tg.user(ADMIN, "Admin", language_code="en")
    tg.send_text(admin, "/kb")
    assert "Knowledge base · version" in (await tg.wait_for_message(admin)).text
    tg.send_text(admin, "/stats")
    assert "Figures · last 7 days" in (await tg.wait_for_message(admin)).text
    tg.send_text(admin, "/reload")
    assert "Nothing changed in the knowledge base" in (await tg.wait_for_message(admin)).text
    # In the secretariat's group everyone reads the same reply: Korean.
    member = tg.user(desk.member.id, "Member", language_code="en")
    tg.send_text(member, "/stats", chat=desk.group)
    assert "최근 7일" in (await tg.wait_for_message(desk.group)).text


async def test_pending_lists_open_followups_oldest_first_in_pages(desk: RunningBot) -> None:
    tg = desk.tg
    for n in range(7):
        user = tg.user(7200 + n, f"문의자{n}")
        await ask_unanswerable(desk, user, f"사무국 이메일 주소 {n}번 알려주세요")
    tg.send_text(desk.member, "/pending", chat=desk.group)
    page = await tg.wait_for_message(desk.group)
    assert "열린 문의 7건" in page.text and "(오래된 순, 1–5)" in page.text
    assert page.text.index("0번") < page.text.index("4번") and "5번" not in page.text
    tg.press(desk.member, page, "pg:5")
    second = await tg.wait_for_message(desk.group, lambda m: m.kind == "edited")
    assert "5번" in second.text and "6번" in second.text and "0번" not in second.text


async def test_close_and_gap_buttons_and_followup_history(desk: RunningBot) -> None:
    tg = desk.tg
    user = tg.user(7301, "질문자")
    _, post = await ask_unanswerable(desk, user, "신청서 양식 어디서 받아요?")
    [followup] = await desk.followups()
    tg.press(desk.member, post, f"sg:{followup.id}")
    assert "지식베이스 공백" in (await tg.wait_for_message(desk.group)).text
    tg.press(desk.member, post, f"sc:{followup.id}")
    ask = await tg.wait_for_message(desk.group)
    assert "종료 사유" in ask.text
    tg.press(desk.member, ask, f"sr:{followup.id}:out_of_scope")
    closed = await tg.wait_for_message(desk.group, lambda m: m.kind == "sent")
    assert "답변 없이 종료" in closed.text
    [followup] = await desk.followups()
    assert followup.status == "closed" and followup.kb_gap and followup.closed_by == 7001

    tg.send_text(desk.member, f"/followup {followup.id}", chat=desk.group)
    detail = await tg.wait_for_message(desk.group, lambda m: "/followup" not in m.text
                                       and m.kind == "sent")
    assert "종료" in detail.text and "지식베이스 공백 표시" in detail.text
    assert "답변 없이 종료: 사무국이 안내하는 범위 밖의 문의입니다" in detail.text
    assert "신청서 양식 어디서 받아요?" in detail.text


async def test_stats_show_answer_rate_followups_and_unanswered_terms(desk: RunningBot) -> None:
    tg = desk.tg
    user = tg.user(7401, "통계")
    tg.send_text(user, "국민성장펀드 규모는?")
    await tg.wait_for_message(user)
    _, post = await ask_unanswerable(desk, user)
    tg.send_text(desk.member, "확정되면 알려드리겠습니다.", chat=desk.group, reply_to=post)
    await tg.wait_for_message(user)
    await tg.wait_for_message(desk.group)
    tg.send_text(desk.member, "/stats 30", chat=desk.group)
    stats = await tg.wait_for_message(desk.group)
    assert "최근 30일" in stats.text
    assert "질문 2건 (답변 1 · 미답변 1 · 주제 밖 0 · 일상 대화 0)" in stats.text
    assert "답변율 50%" in stats.text
    assert "접수 1 · 답변 1 · 종료 0 · 열림 0" in stats.text
    assert "금리 (1)" in stats.text


async def test_stats_list_words_as_written_and_short_waits_in_minutes(desk: RunningBot) -> None:
    tg = desk.tg
    user = tg.user(7402, "영어")
    # The index holds the English word's stem (appli); the secretariat reads the word.
    _, post = await ask_unanswerable(desk, user, "대출 금리가 몇 %예요? apply 하려고요")
    tg.send_text(desk.member, "3월에 공지됩니다.", chat=desk.group, reply_to=post)
    await tg.wait_for_message(user)
    await tg.wait_for_message(desk.group)
    tg.send_text(desk.member, "/stats", chat=desk.group)
    stats = await tg.wait_for_message(desk.group)
    assert "apply (1)" in stats.text and "금리 (1)" in stats.text
    assert "appli " not in stats.text and "appli(" not in stats.text
    [waited] = [line for line in stats.text.splitlines() if line.startswith("답변까지")]
    # Answered within the minute: minutes, not 0.0시간.
    assert waited.endswith(("1분 미만", "분")) and "시간" not in waited.split(":")[1], waited


async def test_an_answered_followup_becomes_an_faq_proposal_an_admin_can_accept(
        desk: RunningBot) -> None:
    tg = desk.tg
    user = tg.user(7501, "제안")
    question = "국민성장펀드 설명회 참가비가 있나요?"
    _, post = await ask_unanswerable(desk, user, question)
    tg.send_text(desk.member, "설명회 참가비는 없습니다. 누구나 무료로 참석할 수 있습니다.",
                 chat=desk.group, reply_to=post)
    await tg.wait_for_message(user)
    await tg.wait_for_message(desk.group)
    [followup] = await desk.followups()
    tg.send_text(desk.member, f"/tofaq {followup.id}", chat=desk.group)
    written = await tg.wait_for_message(desk.group)
    assert "FAQ 초안" in written.text and "/review" in written.text

    knowledge = desk.settings.knowledge_dir
    proposal = knowledge / "review" / f"followup-{followup.id}.yaml"
    assert proposal.exists()
    # An admin refines the draft; the command asked again does not write over it.
    proposal.write_text(proposal.read_text(encoding="utf-8").replace(
        "alternates: []", "alternates: [설명회 참가비]"), encoding="utf-8")
    tg.send_text(desk.member, f"/tofaq {followup.id}", chat=desk.group)
    again = await tg.wait_for_message(desk.group)
    assert again.text == (f"📝 #{followup.id}의 답변으로 만든 FAQ 초안이 이미 있습니다. "
                          "관리자가 /review 에서 승인하거나 폐기합니다.")
    assert "설명회 참가비]" in proposal.read_text(encoding="utf-8")
    assert load_knowledge(knowledge).entries, "the proposal waits outside faq/"
    assert not any(e.id == f"followup-{followup.id}" for e in load_knowledge(knowledge).entries)
    shutil.move(proposal, knowledge / "faq" / proposal.name)  # the admin accepts it
    accepted = load_index(knowledge)
    result = answer(question, accepted)
    assert result.status == "answered" and result.document.id == f"followup-{followup.id}"
    assert accepted.knowledge.sources["SEC"].publisher == "국민성장펀드 사무국"


async def test_the_faq_buttons_write_one_draft_and_say_so_once_however_often_pressed(
        desk: RunningBot) -> None:
    tg = desk.tg
    user = tg.user(7503, "한번만")
    _, post = await ask_unanswerable(desk, user, "국민성장펀드 설명회 참가비가 있나요?")
    [followup] = await desk.followups()
    tg.press(desk.member, post, f"sf:{followup.id}")
    await tg.wait_until(lambda: len(tg.callback_answers) == 1)
    assert "아직 답변이 없어" in tg.callback_answers[-1].text, "told the presser, not the group"
    tg.send_text(desk.member, "설명회 참가비는 없습니다.", chat=desk.group, reply_to=post)
    await tg.wait_for_message(user)
    confirmed = await tg.wait_for_message(desk.group)
    [(_, make)] = [b for b in confirmed.buttons if b[0] == "FAQ로 만들기"]
    assert make == f"sf:{followup.id}"

    pressed = tg.press(desk.member, confirmed, make)
    written = await tg.wait_for_message(desk.group)
    assert "FAQ 초안" in written.text and f"followup-{followup.id}.yaml" in written.text
    draft = desk.settings.knowledge_dir / "review" / f"followup-{followup.id}.yaml"
    shutil.move(draft, draft.with_suffix(".seen"))  # a second write would show

    tg.redeliver_press(pressed)  # the same press, delivered again
    tg.press(desk.member, confirmed, make)  # pressed again
    tg.press(desk.member, post, f"sf:{followup.id}")  # the post's "FAQ 제안 만들기"
    await tg.wait_until(lambda: len(tg.callback_answers) == 4)
    assert [a.text for a in tg.callback_answers[-2:]] == [
        f"📝 #{followup.id}의 답변으로 만든 FAQ 초안이 이미 있습니다. "
        "관리자가 /review 에서 승인하거나 폐기합니다."] * 2
    assert not draft.exists(), "written once"
    assert [m.text for m in tg.messages_to(desk.group)].count(written.text) == 1
    async with desk.database.session() as session:
        proposals = (await session.exec(select(FollowUpEvent).where(
            FollowUpEvent.kind == "proposal"))).all()
    assert [(e.followup_id, e.author_id) for e in proposals] == [(followup.id, desk.member.id)]


async def test_tofaq_refuses_a_followup_without_an_answer(desk: RunningBot) -> None:
    tg = desk.tg
    user = tg.user(7502, "미답")
    await ask_unanswerable(desk, user)
    [followup] = await desk.followups()
    tg.send_text(desk.member, f"/tofaq {followup.id}", chat=desk.group)
    assert "아직 답변이 없어" in (await tg.wait_for_message(desk.group)).text
    assert not (desk.settings.knowledge_dir / "review").exists()


async def test_the_daily_digest_lists_followups_open_for_more_than_a_day(
        desk: RunningBot) -> None:
    from bot.handlers.secretariat import send_digest

    tg = desk.tg
    for n, user_id in enumerate((7601, 7602)):
        await ask_unanswerable(desk, tg.user(user_id, f"다이제스트{n}"), f"접수 마감 {n}일 언제?")
    followups = await desk.followups()
    async with desk.database.session() as session:
        await session.exec(update(FollowUp).where(FollowUp.id == followups[0].id).values(
            created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=2)))
        await session.commit()
    desk.app.job_queue.run_once(send_digest, 0)
    digest = await tg.wait_for_message(desk.group)
    assert "하루 넘게 열린 문의 1건" in digest.text
    assert f"#{followups[0].id}" in digest.text and f"#{followups[1].id}" not in digest.text
    assert [job.name for job in desk.app.job_queue.get_jobs_by_name("digest")] == ["digest"]


async def test_a_closed_followup_is_reported_to_the_asker_with_the_secretariats_reason(
        desk: RunningBot) -> None:
    tg = desk.tg
    user = tg.user(7303, "마무리")
    asked = tg.send_text(user, "투자 한도가 기업당 얼마예요?")
    await tg.wait_for_message(user)
    post = await tg.wait_for_message(desk.group)
    [followup] = await desk.followups()
    tg.press(desk.member, post, f"sc:{followup.id}")
    ask = await tg.wait_for_message(desk.group)
    assert f"#{followup.id}" in ask.text and "종료 사유" in ask.text
    assert len(ask.buttons) == 5
    [(label, data)] = [b for b in ask.buttons if b[1] == f"sr:{followup.id}:undecided"]
    assert (await desk.followups())[0].status == "open", "nothing closes before a reason"

    pressed = tg.press(desk.member, ask, data)
    told = await tg.wait_for_message(user)
    assert "사무국 안내" in told.text and f"접수번호 {followup.id}" in told.text
    assert "투자 한도가 기업당 얼마예요?" in told.text
    assert f"사유: {label}" in told.text and "아직 정해지지 않은" in told.text
    assert told.reply_to == asked.message_id, "under the question it closes"
    buttons_gone = await tg.wait_for_message(desk.group, lambda m: m.kind == "edited")
    assert buttons_gone.message_id == ask.message_id and buttons_gone.buttons == []
    closed = await tg.wait_for_message(desk.group, lambda m: m.kind == "sent")
    assert "답변 없이 종료" in closed.text and label in closed.text
    assert "질문한 분께 사유를 알렸습니다" in closed.text

    tg.redeliver_press(pressed)
    tg.press(desk.member, ask, f"sr:{followup.id}:duplicate", forged=True)
    tg.press(desk.member, post, f"sc:{followup.id}")
    await tg.wait_until(lambda: len(tg.callback_answers) == 4)
    assert [a.text for a in tg.callback_answers[-2:]] == ["이미 종료된 문의입니다."] * 2
    assert len(tg.messages_to(user)) == 2, "the asker is told once"
    [followup] = await desk.followups()
    assert followup.status == "closed" and followup.closed_by == desk.member.id
    async with desk.database.session() as session:
        closings = (await session.exec(select(FollowUpEvent.text).where(
            FollowUpEvent.kind == "closed"))).all()
    assert list(closings) == [label]

    tg.send_text(user, "/myquestions")
    listing = await tg.wait_for_message(user)
    assert f"접수번호 {followup.id}" in listing.text and "· 종료 ·" in listing.text
    assert f"종료 사유: {label}" in listing.text


async def test_myquestions_lists_the_askers_own_questions_with_status_and_answer(
        desk: RunningBot) -> None:
    tg = desk.tg
    user, other = tg.user(7304, "목록"), tg.user(7305, "남의")
    tg.send_text(user, "/myquestions")
    assert "아직 없습니다" in (await tg.wait_for_message(user)).text

    _, first_post = await ask_unanswerable(desk, user, "설명회 일정이 어떻게 되나요?")
    await ask_unanswerable(desk, user, "신청서 양식 어디서 받아요?")
    await ask_unanswerable(desk, other, "투자 한도가 기업당 얼마예요")
    tg.send_text(desk.member, "12월 10일 서울에서 엽니다.", chat=desk.group,
                 reply_to=first_post)
    await tg.wait_for_message(user)
    await tg.wait_for_message(desk.group)
    first, second, _ = await desk.followups()

    tg.send_text(user, "/myquestions")
    listing = await tg.wait_for_message(user)
    assert "사무국에 보내신 문의 (2건, 최근 순)" in listing.text
    assert listing.text.index(f"접수번호 {second.id}") < listing.text.index(
        f"접수번호 {first.id}"), "newest first"
    newer, older = listing.text.split(f"접수번호 {first.id}")
    assert "사무국 확인 중" in newer and "신청서 양식 어디서 받아요?" in newer
    assert "답변 완료" in older and "답변: 12월 10일 서울에서 엽니다." in older
    assert "투자 한도" not in listing.text
    assert tg.parse_errors == []

    group = tg.group(-4010, "팀", members=[user])
    tg.send_text(user, "/myquestions", chat=group)
    assert "1:1 대화" in (await tg.wait_for_message(group)).text

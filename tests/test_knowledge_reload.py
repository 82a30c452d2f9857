"""Admins refresh the knowledge of a running bot; a broken file never reaches users."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlmodel import select

from bot.knowledge import load_index
from bot.storage.models import AdminAction, KnowledgeState
from testing.harness import RunningBot, bot_settings, running_bot
from tests.conftest import CACHE_DIR, LIVE_ADMIN


def rewrite(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


async def ask(bot: RunningBot, text: str) -> str:
    bot.tg.send_text(bot.user, text)
    return (await bot.tg.wait_for_message(bot.user)).text


async def test_an_admin_reload_serves_a_changed_answer_at_once(live: RunningBot) -> None:
    before = live.services.index.version
    assert "150조원" in await ask(live, "국민성장펀드 총 규모는?")
    rewrite(live.settings.knowledge_dir / "faq" / "fund.yaml", "150조원", "155조원")

    live.tg.send_text(live.admin, "/reload")
    done = await live.tg.wait_for_message(live.admin)
    after = live.services.index.version
    assert after != before
    assert f"{before} → {after}" in done.text
    assert "추가 0 · 삭제 0 · 변경" in done.text and "fund-size" in done.text
    assert "155조원" in await ask(live, "국민성장펀드 총 규모는?")
    async with live.database.session() as session:
        state = await session.get(KnowledgeState, 1)
    assert state.version == after and state.updated_by == LIVE_ADMIN


async def test_a_broken_file_is_refused_with_its_line_and_the_old_answer_still_served(
        live: RunningBot) -> None:
    before = live.services.index.version
    faq = live.settings.knowledge_dir / "faq" / "fund.yaml"
    rewrite(faq, "150조원", "155조원")
    with faq.open("a", encoding="utf-8") as broken:
        broken.write("  - id: broken-entry\n    question: [닫히지 않은\n")
    live.tg.send_text(live.admin, "/reload")
    refused = await live.tg.wait_for_message(live.admin)
    assert "오류가 있어 새로 읽지 않았습니다" in refused.text
    assert f"{faq}:" in refused.text
    line = int(refused.text.split(f"{faq}:")[1].split(":")[0])
    assert line >= len(faq.read_text(encoding="utf-8").splitlines()) - 1
    assert live.services.index.version == before
    assert "150조원" in await ask(live, "국민성장펀드 총 규모는?")


async def test_a_broken_faq_file_is_named_first_and_the_rules_citing_its_entries_follow_it(
        live: RunningBot) -> None:
    root = live.settings.knowledge_dir
    faq, rules = root / "faq" / "contact.yaml", root / "eligibility.yaml"
    assert "contact-briefings" in rules.read_text(encoding="utf-8")  # cited by a rule
    with faq.open("a", encoding="utf-8") as broken:
        broken.write("  - id: broken-entry\n    question: [닫히지 않은\n")
    before = live.services.index.version

    live.tg.send_text(live.admin, "/reload")
    text = (await live.tg.wait_for_message(live.admin)).text
    assert "오류가 있어 새로 읽지 않았습니다" in text
    cause, knock_on = text.split("위 오류 때문에 생긴 것으로")
    # The file to fix comes first, alone; the rule that cites its entry is said to follow.
    assert f"{faq}:" in cause and "invalid YAML" in cause and str(rules) not in cause
    assert "다음 1건은" in cause
    assert f"{rules}:" in knock_on and "unknown FAQ entry 'contact-briefings'" in knock_on
    assert f"(follows from {faq}:" in knock_on
    assert live.services.index.version == before


async def test_a_missing_field_and_a_duplicate_id_are_refused_too(live: RunningBot) -> None:
    faq = live.settings.knowledge_dir / "faq" / "extra.yaml"
    faq.write_text("category: fund\nentries:\n"
                   "  - id: fund-size\n    question: 중복\n    answer: 답\n"
                   "    sources: [S1]\n    as_of: 2025-12-04\n"
                   "  - id: no-answer\n    question: 답 없음\n    sources: [S1]\n"
                   "    as_of: 2025-12-04\n", encoding="utf-8")
    live.tg.send_text(live.admin, "/reload")
    refused = await live.tg.wait_for_message(live.admin)
    assert "duplicate id 'fund-size'" in refused.text and f"{faq}:3" in refused.text
    assert f"{faq}:8: entry 'no-answer' has no answer" in refused.text


async def test_reload_and_kb_are_for_admins_only_and_every_attempt_is_audited(
        live: RunningBot) -> None:
    live.tg.send_text(live.user, "/reload")
    assert "관리자만" in (await live.tg.wait_for_message(live.user)).text
    live.tg.send_text(live.user, "/kb")
    assert "관리자만" in (await live.tg.wait_for_message(live.user)).text
    live.tg.send_text(live.admin, "/kb")
    kb = await live.tg.wait_for_message(live.admin)
    assert live.services.index.version in kb.text and "FAQ 79개" in kb.text
    assert "가장 오래된 기준일" in kb.text
    async with live.database.session() as session:
        rows = (await session.exec(select(AdminAction).order_by(AdminAction.id))).all()
    assert [(r.person_id, r.action, r.allowed) for r in rows] == [
        (9200, "reload", False), (9200, "kb", False), (LIVE_ADMIN, "kb", True)]


async def test_questions_are_answered_while_a_reload_runs(live: RunningBot) -> None:
    reload = asyncio.create_task(live.services.reloader.reload(by=LIVE_ADMIN))
    answers = await asyncio.gather(*(ask(live, q) for q in ["국민성장펀드 총 규모는?"]))
    await reload
    assert "150조원" in answers[0]


async def test_with_knowledge_watch_a_changed_file_is_served_without_a_command(
        tg, tmp_path: Path, knowledge_copy: Path) -> None:
    settings = bot_settings(tg, tmp_path, knowledge_dir=knowledge_copy, knowledge_watch=True)
    async with running_bot(tg, settings, load_index(knowledge_copy, cache_dir=CACHE_DIR)) as bot:
        before = bot.services.index.version
        await asyncio.sleep(0.5)  # let the watcher start
        rewrite(knowledge_copy / "faq" / "fund.yaml", "150조원", "160조원")
        await tg.wait_until(lambda: bot.services.index.version != before, timeout=15)
        user = tg.user(9300, "감시")
        tg.send_text(user, "국민성장펀드 총 규모는?")
        assert "160조원" in (await tg.wait_for_message(user)).text


async def test_maxbot_reindex_makes_running_bots_serve_the_new_version_and_audit_lists_it(
        tg, tmp_path: Path, knowledge_copy: Path, database_url: str, monkeypatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli import main

    settings = bot_settings(tg, tmp_path, database_url=database_url,
                            knowledge_dir=knowledge_copy, knowledge_sync_seconds=0.2,
                            admin_user_ids=frozenset({LIVE_ADMIN}))
    async with running_bot(tg, settings, load_index(knowledge_copy, cache_dir=CACHE_DIR)) as bot:
        before = bot.services.index.version
        rewrite(knowledge_copy / "faq" / "fund.yaml", "150조원", "180조원")
        monkeypatch.setenv("DATABASE_URL", database_url)
        monkeypatch.setenv("KNOWLEDGE_DIR", str(knowledge_copy))
        monkeypatch.setenv("SPOOL_PATH", str(tmp_path / "cli-spool.jsonl"))
        assert await asyncio.to_thread(main, ["reindex"]) == 0
        out = capsys.readouterr().out
        assert f"knowledge {before} -> " in out and "~ fund-size" in out
        assert "added 0, removed 0, changed" in out
        await tg.wait_until(lambda: bot.services.index.version != before, timeout=60)
        user = tg.user(9600, "재색인")
        tg.send_text(user, "국민성장펀드 총 규모는?")
        assert "180조원" in (await tg.wait_for_message(user)).text

        tg.send_text(tg.user(9601, "남"), "/reload")
        await tg.wait_for_message(9601)
        assert await asyncio.to_thread(main, ["audit"]) == 0
        audit = capsys.readouterr().out
        assert "reindex" in audit and "거부" in audit and "9601" in audit

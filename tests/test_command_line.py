"""The `maxbot` command as a newcomer and an admin meet it in a terminal: a fresh `.env`
copied from `.env.example`, the terminal chat, the audit log."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import select

from bot.cli import main
from bot.settings import Settings
from bot.storage.database import Database, upgrade_schema
from bot.storage.models import AdminAction
from bot.storage.records import log_action
from testing.standin import BotApiStandIn
from tests.conftest import KNOWLEDGE, PROJECT
from tests.test_run_command import stop_maxbot


def newcomer_folder(tmp_path: Path, **filled: str) -> tuple[Path, dict[str, str]]:
    """A folder set up as README's quick start says: `.env.example` copied to `.env` as it
    is, with only the given settings filled in, beside the knowledge base. Also the
    environment to run in: ours without any setting, so that only `.env` speaks."""
    lines = []
    for line in (PROJECT / ".env.example").read_text(encoding="utf-8").splitlines():
        name = line.partition("=")[0]
        lines.append(f"{name}={filled[name]}" if name in filled else line)
    (tmp_path / ".env").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "knowledge").symlink_to(KNOWLEDGE, target_is_directory=True)
    settings = {name.upper() for name in Settings.model_fields}
    env = {k: v for k, v in os.environ.items() if k.upper() not in settings}
    return tmp_path, env


def maxbot(folder: Path, env: dict[str, str], *args: str,
           stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=folder, env=env,
                          input=stdin, capture_output=True, text=True, timeout=300)


def test_env_example_with_only_the_token_filled_in_runs_ask_and_check(tmp_path: Path) -> None:
    folder, env = newcomer_folder(tmp_path, TELEGRAM_BOT_TOKEN="123456:filled-in-token")
    assert "\nSECRETARIAT_CHAT_ID=\n" in (folder / ".env").read_text(encoding="utf-8")

    asked = maxbot(folder, env, "ask", "국민성장펀드 총 규모는?")
    assert asked.returncode == 0, asked.stderr
    assert "150조" in asked.stdout
    assert "Traceback" not in asked.stderr

    checked = maxbot(folder, env, "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.splitlines()[-1].startswith("ok: ")

    # Read by a pager or `head` that stops early: the answers end quietly, without a traceback.
    reader = subprocess.Popen(["head", "-c", "1"], stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL)
    piped = subprocess.run([sys.executable, "-m", "bot", "ask", *["국민성장펀드 총 규모는?"] * 200],
                           cwd=folder, env=env, stdout=reader.stdin, stderr=subprocess.PIPE,
                           text=True, timeout=300)
    reader.stdin.close()
    reader.wait(timeout=10)
    assert "Traceback" not in piped.stderr and "BrokenPipe" not in piped.stderr, piped.stderr


async def test_env_example_with_only_the_token_filled_in_runs_the_bot(
        tg: BotApiStandIn, tmp_path: Path) -> None:
    # The stand-in's address stands in for Telegram's; every other setting is as shipped.
    folder, env = newcomer_folder(tmp_path, TELEGRAM_BOT_TOKEN=tg.token,
                                  TELEGRAM_BASE_URL=tg.base_url)
    log = (folder / "maxbot.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", cwd=folder, env=env, stdout=log,
        stderr=asyncio.subprocess.STDOUT)
    process.log_path = folder / "maxbot.log"
    log.close()
    try:
        await tg.wait_until(lambda: tg.calls("getUpdates") or process.returncode is not None,
                            timeout=60)
        assert process.returncode is None, process.log_path.read_text(encoding="utf-8")
        user = tg.user(311, "새내기")
        tg.send_text(user, "국민성장펀드 규모는?")
        reply = await tg.wait_for_message(user, timeout=30)
        assert "150조" in reply.text
    finally:
        if process.returncode is None:
            await stop_maxbot(process)
    assert (folder / "var" / "maxbot.db").exists(), "DATABASE_URL as .env.example has it"


UNANSWERED = "국민성장펀드 신청 마감일은 언제인가요?"  # no source gives a deadline
OFF_TOPIC_REPLY = "제가 답할 수 있는 범위가 아닙니다"


@pytest.mark.parametrize("leave", ["quit", "exit", "나가기"])
def test_the_terminal_chat_has_help_explains_check_and_leaves_when_asked(
        tmp_path: Path, leave: str) -> None:
    folder, env = newcomer_folder(tmp_path)  # no token: `maxbot` alone opens the chat
    typed = ["/help", "/check", "/topics", UNANSWERED, leave, "국민성장펀드 규모는?"]
    chat = maxbot(folder, env, stdin="\n".join(typed) + "\n")
    assert chat.returncode == 0, chat.stderr
    said = chat.stdout

    assert "TELEGRAM_BOT_TOKEN이 없어 터미널에서 대화합니다" in said
    assert "끝내려면 나가기(quit, exit) 또는 Ctrl+D" in said
    assert "/help 이 도움말" in said and "나가기, quit, exit 또는 Ctrl+D 대화 끝내기" in said
    assert "텔레그램 봇에서 버튼으로 진행하는 기능이라 터미널에서는 할 수 없습니다" in said
    assert "사업 분야, 자금 용도, 필요 규모" in said, "the check's steps, from eligibility.yaml"
    assert "터미널 대화에는 /topics 명령이 없습니다" in said
    assert OFF_TOPIC_REPLY not in said, "commands and leave words are not questions"

    assert "추측해서 답하지 않겠습니다" in said
    assert "터미널에서는 질문을 사무국에 보내지 않습니다" in said
    assert "이런 질문은 사무국에 전달되어" not in said and "전달했습니다" not in said

    assert said.rstrip().endswith("대화를 마칩니다. 이용해 주셔서 감사합니다.")
    assert "150조" not in said, "nothing typed after leaving is answered"


def test_maxbot_ask_says_the_terminal_does_not_forward_a_question(tmp_path: Path) -> None:
    folder, env = newcomer_folder(tmp_path)
    asked = maxbot(folder, env, "ask", UNANSWERED)
    assert asked.returncode == 0, asked.stderr
    assert "터미널에서는 질문을 사무국에 보내지 않습니다. 텔레그램 봇에 물으시면" in asked.stdout
    assert "이런 질문은 사무국에 전달되어" not in asked.stdout

    as_json = maxbot(folder, env, "ask", "--json", UNANSWERED)
    reply = json.loads(as_json.stdout)["reply"]
    assert "터미널에서는 질문을 사무국에 보내지 않습니다" in reply


def utc(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2025, 11, day, hour, minute, tzinfo=dt.UTC)


LONG_DETAIL = "/tofaq 3 " + "사무국이 남긴 아주 긴 설명, " * 12 + "마지막 말\n둘째 줄도 있습니다"


async def test_maxbot_audit_reads_in_korean_in_korean_time_with_every_detail_whole(
        database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    await asyncio.to_thread(upgrade_schema, database_url)
    database = Database(database_url, tmp_path / "spool.jsonl")
    done = [  # who, action, detail, allowed, when
        (9601, "reload", "/reload", False, utc(3, 14)),  # 23:00 KST, still 3 Nov
        (7001, "button:sc:2", "", True, utc(3, 23, 30)),  # 08:30 KST on 4 Nov
        (0, "reindex", "cli: 795475c389c7", True, utc(4, 1)),
        (7001, "tofaq", LONG_DETAIL, True, utc(4, 2, 15)),
    ]
    async with database.session() as session:
        for who, action, detail, allowed, _ in done:
            await log_action(session, who, action, detail, allowed)
        rows = (await session.exec(select(AdminAction).order_by(AdminAction.id))).all()
        for row, (*_, when) in zip(rows, done, strict=True):
            row.at = when
            session.add(row)
        await session.commit()
    await database.close()
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SPOOL_PATH", str(tmp_path / "spool.jsonl"))

    assert await asyncio.to_thread(main, ["audit"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["2025-11-03", "23:00:00", "KST", "거부", "9601", "지식", "다시",
                                "읽기", "(/reload)"]
    assert lines[1].strip() == "/reload"
    assert lines[2].startswith("2025-11-04 08:30:00 KST  허용")
    assert lines[2].endswith("답변 불필요·종료 버튼 · 문의 #2")
    assert lines[3].endswith("  명령줄  지식 재색인 (maxbot reindex)")
    assert lines[5].endswith("FAQ 제안 (/tofaq)")
    assert [line.strip() for line in lines[6:8]] == LONG_DETAIL.splitlines(), "whole, not cut"
    assert lines[-1] == "작업 4건 (허용 3건, 거부 1건)"
    shown = "\n".join(lines)
    assert "UTC" not in shown and "button:" not in shown and "action(s)" not in shown

    assert await asyncio.to_thread(main, ["audit", "--since", "2025-11-04"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("2025-11-04 08:30:00 KST"), "a Korean day, from 00:00 KST"
    assert lines[-1] == "작업 3건 (허용 3건, 거부 0건)"

    assert await asyncio.to_thread(main, ["audit", "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(a["at"], a["person_id"], a["action"], a["allowed"]) for a in listed] == [
        (when.isoformat(), who, action, allowed) for who, action, _, allowed, when in done]
    assert listed[3]["detail"] == LONG_DETAIL


def test_bench_with_a_bare_written_flag_answers_the_blind_sets_messages(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """`maxbot bench --written` with no file named measures the default sets' messages, as
    README says, rather than none."""
    monkeypatch.chdir(PROJECT)
    assert main(["bench", "--sizes", "--queries", "5", "--no-reload", "--written"]) == 0
    rows = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert "real" in rows and "written" in rows

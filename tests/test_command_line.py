"""The `maxbot` command as a newcomer and an admin meet it in a terminal: a fresh `.env`
copied from `.env.example`, the terminal chat, the audit log."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import Settings
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

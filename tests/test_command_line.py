"""The `maxbot` command as a newcomer and an admin meet it in a terminal: a fresh `.env`
copied from `.env.example`, the terminal chat, the audit log."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

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

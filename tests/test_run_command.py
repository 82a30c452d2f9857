"""`maxbot run` as an operator starts it: polling or webhook, configured by environment only,
stopped gracefully by SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import httpx
import pytest

from testing.standin import BotApiStandIn

PROJECT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def start_maxbot(tg: BotApiStandIn, tmp_path: Path, **extra: str
                       ) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "WEBHOOK_"))}
    env.update({
        "TELEGRAM_BOT_TOKEN": tg.token,
        "TELEGRAM_BASE_URL": tg.base_url,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'run.db'}",
        "SPOOL_PATH": str(tmp_path / "spool.jsonl"),
        "KNOWLEDGE_DIR": str(PROJECT / "knowledge"),
        "LOG_LEVEL": "DEBUG",  # the most the log can say, to show the token never appears
        **extra,
    })
    # The log goes to a file: an unread pipe fills up and blocks a chatty process.
    log = (tmp_path / "maxbot.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", cwd=tmp_path, env=env, stdout=log,
        stderr=asyncio.subprocess.STDOUT)
    process.log_path = tmp_path / "maxbot.log"
    log.close()
    return process


async def stop_maxbot(process: asyncio.subprocess.Process) -> str:
    process.send_signal(signal.SIGTERM)
    await asyncio.wait_for(process.wait(), timeout=30)
    output = process.log_path.read_text(encoding="utf-8", errors="replace")
    assert process.returncode == 0, output[-5000:]
    return output


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_maxbot_run_answers_and_stops_gracefully_on_sigterm(
        tg: BotApiStandIn, tmp_path: Path, mode: str) -> None:
    extra = {}
    if mode == "webhook":
        port = free_port()
        extra = {"WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram", "WEBHOOK_PORT": str(port),
                 "WEBHOOK_LISTEN": "127.0.0.1", "WEBHOOK_SECRET": "s3cret-header-value"}
    process = await start_maxbot(tg, tmp_path, **extra)
    try:
        await tg.wait_until(lambda: tg.calls("getUpdates") or tg.webhook_url, timeout=60)
        user = tg.user(301, "운영")
        tg.send_text(user, "국민성장펀드 규모는?")
        reply = await tg.wait_for_message(user, timeout=30)
        assert "150조" in reply.text
        if mode == "webhook":
            forged = {"update_id": 999, "message": {"message_id": 1, "date": 0, "text": "x",
                      "chat": {"id": 301, "type": "private"}}}
            async with httpx.AsyncClient() as client:
                response = await client.post(extra["WEBHOOK_URL"], json=forged)
            assert response.status_code == 403, "updates without Telegram's secret are refused"
    finally:
        if process.returncode is None:
            output = await stop_maxbot(process)
    assert (tmp_path / "run.db").exists(), "the SQLite file is created on first start"
    assert tg.token not in output
    if mode == "webhook":
        assert tg.webhook_url == extra["WEBHOOK_URL"]
        assert not tg.calls("getUpdates")


async def test_webhook_mode_refuses_to_start_without_a_secret(tg: BotApiStandIn,
                                                             tmp_path: Path) -> None:
    process = await start_maxbot(tg, tmp_path, WEBHOOK_URL="http://127.0.0.1:9/telegram")
    await asyncio.wait_for(process.wait(), timeout=60)
    assert process.returncode != 0
    assert "WEBHOOK_SECRET is not set" in process.log_path.read_text(encoding="utf-8")


async def test_run_without_a_token_says_what_to_set(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEGRAM_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 2
    assert "TELEGRAM_BOT_TOKEN is not set; see .env.example" in output.decode()

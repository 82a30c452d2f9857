"""The inbox: a bot process killed or stopped in the middle of a burst loses no question and
answers no one twice, polling and webhook alike (bot/inbox.py, bench/crash.py)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from bench.crash import interrupted_burst
from tests.standin import BotApiStandIn
from tests.test_run_command import free_port


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_a_bot_killed_mid_burst_answers_every_user_exactly_once_after_a_restart(
        tg: BotApiStandIn, tmp_path: Path, database_url: str, mode: str) -> None:
    extra = {}
    if mode == "webhook":
        if not database_url.startswith("sqlite"):
            pytest.skip("the webhook's way in is the same on both databases")
        port = free_port()
        extra = {"WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram", "WEBHOOK_PORT": str(port),
                 "WEBHOOK_LISTEN": "127.0.0.1", "WEBHOOK_SECRET": "s3cret-header-value"}
    burst = await interrupted_burst(tg, tmp_path, database_url, users=60, stop=signal.SIGKILL,
                                    **extra)

    logs = (tmp_path / "first.log").read_text() + (tmp_path / "restarted.log").read_text()
    assert burst.replies == {user: 1 for user in burst.asked}, logs[-3000:]
    assert burst.stored == {user: [text] for user, text in burst.asked.items()}
    assert burst.unfinished == 0
    assert "left unfinished by a stopped process" in (tmp_path / "restarted.log").read_text()


async def test_sigterm_mid_burst_stops_the_bot_within_8_seconds_and_hands_back_the_rest(
        tg: BotApiStandIn, tmp_path: Path) -> None:
    """A container runtime waits 10 s after SIGTERM; the updates not answered by then are
    answered after the restart, once."""
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'crash.db'}"
    # 200 replies still to go at SIGTERM take 7 s at Telegram's rate: more than the bot waits.
    burst = await interrupted_burst(tg, tmp_path, database_url, users=300, stop=signal.SIGTERM)

    assert burst.stop_seconds < 8
    assert burst.replies == {user: 1 for user in burst.asked}
    assert burst.stored == {user: [text] for user, text in burst.asked.items()}
    assert "left unfinished by a stopped process" in (tmp_path / "restarted.log").read_text()

"""A bot process killed mid-burst: how many questions are lost, how many answers users see twice.

    python -m bench.crash [--users 500] [--database-url postgresql+asyncpg://…]

Each of N users asks one question at once through the Bot API stand-in (with Telegram's rate
limits, so the replies go out at 30 a second). When a third of them have their answer, the
`maxbot run` process is killed with SIGKILL (out of memory, a host restart, a container stopped
past its grace), started again on the same database and spool, and left to finish; then
stopped with SIGTERM. Printed, for SQLite and (with --database-url) PostgreSQL:

* questions lost: asked but never stored in the `question` table;
* users without an answer: asked but got no reply;
* duplicates seen by users: replies beyond the first one to a user's one question;
* the seconds SIGTERM took to stop the bot in the middle of a second burst.

`run_crash_scenario(database_url, users)` gives the SIGKILL figures to other benchmarks
(bench/faults.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import select

from bot.storage.database import Database
from bot.storage.models import InboxUpdate, Question
from testing.standin import BotApiStandIn, User
from testing.throwaway_db import create_database, drop_database

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 120.0
# What company staff ask: answered, on topic but unanswerable (a follow-up), small talk.
QUESTIONS = ("국민성장펀드 규모는?", "대출 금리가 몇 %예요?", "안녕하세요", "M.AX 얼라이언스 분과",
             "초저리 대출 있나요")


async def start_bot(tg: BotApiStandIn, workdir: Path, database_url: str, log_name: str,
                    **extra: str) -> asyncio.subprocess.Process:
    """`maxbot run` as an operator starts it, polling the stand-in; its log in `workdir`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "WEBHOOK_"))}
    env.update({
        "TELEGRAM_BOT_TOKEN": tg.token,
        "TELEGRAM_BASE_URL": tg.base_url,
        "DATABASE_URL": database_url,
        "SPOOL_PATH": str(workdir / "spool.jsonl"),
        "KNOWLEDGE_DIR": str(ROOT / "knowledge"),
        "LOG_LEVEL": "INFO",
        "PYTHONPATH": str(ROOT),
        **extra,
    })
    # The log goes to a file: an unread pipe fills up and blocks a chatty process.
    with (workdir / log_name).open("wb") as log:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", cwd=workdir, env=env, stdout=log,
            stderr=asyncio.subprocess.STDOUT)


@dataclass
class Burst:
    """What a burst did: who asked what, and the bot's records afterwards."""

    asked: dict[int, str]
    replies: dict[int, int] = field(default_factory=dict)
    stored: dict[int, list[str]] = field(default_factory=dict)
    unfinished: int = 0
    stop_seconds: float = 0.0

    @property
    def questions_lost(self) -> int:
        return sum(1 for user, text in self.asked.items()
                   if text not in self.stored.get(user, []))

    @property
    def users_without_answer(self) -> int:
        return sum(1 for user in self.asked if self.replies.get(user, 0) == 0)

    @property
    def duplicates(self) -> int:
        return sum(max(0, n - 1) for n in self.replies.values())


async def interrupted_burst(tg: BotApiStandIn, workdir: Path, database_url: str, users: int,
                            stop: signal.Signals = signal.SIGKILL, first_user: int = 500_000,
                            timeout: float = 300.0, **extra: str) -> Burst:
    """Start the bot, let `users` users ask at once, send `stop` to the bot when a third have
    their answer, start it again and wait until every question is done in its inbox; then
    stop it with SIGTERM and count. `extra`: more settings (WEBHOOK_URL, …)."""
    bot = await start_bot(tg, workdir, database_url, "first.log", **extra)
    restarted = None
    try:
        await tg.wait_until(
            lambda: tg.calls("getUpdates") or tg.webhook_url or bot.returncode is not None,
            timeout=STARTUP_TIMEOUT)
        people: list[User] = [tg.user(first_user + n, f"사용자{n}") for n in range(users)]
        asked = {user.id: QUESTIONS[n % len(QUESTIONS)] for n, user in enumerate(people)}
        for user in people:
            tg.send_text(user, asked[user.id])
        await tg.wait_until(lambda: sum(1 for u in people if tg.messages_to(u)) >= users // 3,
                            timeout=timeout)
        stopped_at = time.monotonic()
        bot.send_signal(stop)
        await asyncio.wait_for(bot.wait(), timeout=60)
        burst = Burst(asked, stop_seconds=time.monotonic() - stopped_at)

        restarted = await start_bot(tg, workdir, database_url, "restarted.log", **extra)
        database = Database(database_url, workdir / "reader-spool.jsonl")
        try:
            await _wait_all_done(database, people, tg, restarted, timeout)
        finally:
            restarted.send_signal(signal.SIGTERM)
            await asyncio.wait_for(restarted.wait(), timeout=60)
            async with database.session() as session:
                for row in (await session.exec(select(Question))).all():
                    burst.stored.setdefault(row.person_id, []).append(row.text)
                burst.unfinished = len((await session.exec(
                    select(InboxUpdate.update_id).where(InboxUpdate.state != "done"))).all())
            await database.close()
        burst.replies = {u.id: len(tg.messages_to(u)) for u in people}
        return burst
    finally:
        for process in (bot, restarted):
            if process is not None and process.returncode is None:
                process.kill()
                await process.wait()


async def _wait_all_done(database: Database, people: list[User], tg: BotApiStandIn,
                         bot: asyncio.subprocess.Process, timeout: float) -> None:
    """Until every user has an answer and the inbox holds no unfinished update: then nothing
    more is on its way to anyone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and bot.returncode is None:
        if all(tg.messages_to(u) for u in people):
            async with database.session() as session:
                rows = (await session.exec(select(InboxUpdate.state))).all()
            if len(rows) >= len(people) and all(state == "done" for state in rows):
                return
        await _changed_or(tg, 0.2)


async def _changed_or(tg: BotApiStandIn, seconds: float) -> None:
    """Until the stand-in sees a request, or `seconds` (the bot's database changes too)."""
    with contextlib.suppress(TimeoutError):
        await tg.wait_until(lambda: False, timeout=seconds)


async def crash_scenario(database_url: str | None, users: int,
                         stop: signal.Signals = signal.SIGKILL) -> Burst:
    """One interrupted burst on a fresh database: an SQLite file, or a new database on the
    PostgreSQL server of `database_url`."""
    with tempfile.TemporaryDirectory(prefix="maxbot-crash-") as folder:
        workdir = Path(folder)
        name = f"maxbot_crash_{uuid.uuid4().hex[:10]}"
        url = (f"sqlite+aiosqlite:///{workdir / 'crash.db'}" if database_url is None
               else await create_database(database_url, name))
        try:
            async with BotApiStandIn() as tg:
                return await interrupted_burst(tg, workdir, url, users, stop)
        finally:
            if database_url is not None:
                await drop_database(database_url, name)


def run_crash_scenario(database_url: str | None, users: int) -> dict[str, int]:
    """SIGKILL mid-burst and restart: questions lost, users left without an answer, and
    replies users saw twice (all should be 0). `database_url`: a PostgreSQL server (a
    throwaway database is made on it), or None for a fresh SQLite file. Blocking (it runs
    its own event loop): call it outside one, or `await crash_scenario(...)` inside."""
    burst = asyncio.run(crash_scenario(database_url, users))
    return {"questions_lost": burst.questions_lost,
            "users_without_answer": burst.users_without_answer,
            "duplicates": burst.duplicates}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.crash", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--database-url", help="a PostgreSQL server (postgresql+asyncpg://…); "
                        "also run there")
    args = parser.parse_args(argv)
    targets: list[tuple[str, str | None]] = [("SQLite", None)]
    if args.database_url:
        targets.append(("PostgreSQL", args.database_url))
    failed = False
    for label, url in targets:
        killed = asyncio.run(crash_scenario(url, args.users, signal.SIGKILL))
        print(f"{label}: {args.users} users, SIGKILL after {args.users // 3} answers: "
              f"questions lost {killed.questions_lost}, users without an answer "
              f"{killed.users_without_answer}, duplicates seen by users {killed.duplicates}",
              flush=True)
        termed = asyncio.run(crash_scenario(url, args.users, signal.SIGTERM))
        print(f"{label}: SIGTERM after {args.users // 3} answers stopped the bot in "
              f"{termed.stop_seconds:.1f} s; then questions lost {termed.questions_lost}, "
              f"users without an answer {termed.users_without_answer}, duplicates "
              f"{termed.duplicates}", flush=True)
        failed |= any((killed.questions_lost, killed.users_without_answer, killed.duplicates,
                       termed.questions_lost, termed.users_without_answer, termed.duplicates))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

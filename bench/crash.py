"""A bot process killed mid-burst: how many questions are lost, how many answers users see twice.

    python -m bench.crash [--users 500] [--database-url postgresql+asyncpg://…]

Each of N users asks one question at once through the Bot API stand-in (with Telegram's rate
limits, so the replies go out at 30 a second). At a kill point the `maxbot run` process is
killed with SIGKILL (out of memory, a host restart, a container stopped past its grace),
started again on the same database and spool, and left to finish; then stopped with SIGTERM.
The kill points: when a tenth, a third, two thirds and nine tenths of the users have their
answer (wherever the bot is then), and, after a third, with every first reply the bot allows
in flight held by "Telegram" before it takes them (`in flight, not sent`) or after (`in
flight, sent`, the answers held): the moments a reply's fate is unknown to the bot. Printed,
for SQLite and (with --database-url) PostgreSQL:

* questions lost: asked but never stored in the `question` table;
* users without an answer: asked but got no reply;
* duplicates seen by users: replies beyond the first one to a user's one question, and of
  them how many say they may be a repeat (answered again after the restart because the kill
  left the first reply's fate unknown) and how many do not (must be 0);
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

from markupsafe import Markup
from sqlmodel import select

from bot.delivery.inbox import FIRST_SENDS_IN_FLIGHT
from bot.replies import render, to_plain_text
from bot.storage.database import Database
from bot.storage.models import InboxUpdate, Question
from testing.standin import BotApiStandIn, User
from testing.throwaway_db import create_database, drop_database

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 120.0
# What company staff ask: answered, on topic but unanswerable (a follow-up), small talk.
QUESTIONS = ("국민성장펀드 규모는?", "대출 금리가 몇 %예요?", "안녕하세요", "M.AX 얼라이언스 분과",
             "초저리 대출 있나요")
# What an answer sent again after a restart says first (bot/templates/ko/repeat.html.j2).
REPEAT_NOTE = to_plain_text(render("repeat", reply=Markup(""))).strip()


@dataclass(frozen=True)
class KillPoint:
    """When the bot is killed: once `answered` of the users have their answer; with
    `in_flight` ("not sent" or "sent"), also once every first reply it allows in flight is
    held by the stand-in, before it takes them or after."""

    answered: float = 1 / 3
    in_flight: str | None = None

    def __str__(self) -> str:
        where = f"after {self.answered:.0%} answered"
        return f"{where}, replies in flight, {self.in_flight}" if self.in_flight else where


KILL_POINTS = (KillPoint(0.1), KillPoint(1 / 3), KillPoint(2 / 3), KillPoint(0.9),
               KillPoint(1 / 3, "not sent"), KillPoint(1 / 3, "sent"))


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
        # One cache of the analyzed knowledge for every process, as a deployment keeps.
        "CACHE_DIR": str(ROOT / "var" / "cache"),
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
    replies: dict[int, list[str]] = field(default_factory=dict)  # the texts each user got
    stored: dict[int, list[str]] = field(default_factory=dict)
    unfinished: int = 0
    stop_seconds: float = 0.0

    @property
    def questions_lost(self) -> int:
        return sum(1 for user, text in self.asked.items()
                   if text not in self.stored.get(user, []))

    @property
    def users_without_answer(self) -> int:
        return sum(1 for user in self.asked if not self.replies.get(user))

    @property
    def duplicates(self) -> int:
        return sum(max(0, len(texts) - 1) for texts in self.replies.values())

    @property
    def marked_duplicates(self) -> int:
        """Second replies that say they may be a repeat."""
        return sum(1 for texts in self.replies.values() if len(texts) > 1
                   for text in texts[1:] if REPEAT_NOTE in text)

    @property
    def unmarked_duplicates(self) -> int:
        return self.duplicates - self.marked_duplicates

    @property
    def marked_first_answers(self) -> int:
        """Users whose only reply says it may be a repeat: the kill came before Telegram had
        the first one."""
        return sum(1 for texts in self.replies.values()
                   if len(texts) == 1 and REPEAT_NOTE in texts[0])


async def interrupted_burst(tg: BotApiStandIn, workdir: Path, database_url: str, users: int,
                            stop: signal.Signals = signal.SIGKILL, first_user: int = 500_000,
                            timeout: float = 300.0, at: KillPoint = KillPoint(),
                            **extra: str) -> Burst:
    """Start the bot, let `users` users ask at once, send `stop` to the bot at `at`, start it
    again and wait until every question is done in its inbox; then stop it with SIGTERM and
    count. `extra`: more settings (WEBHOOK_URL, …)."""
    bot = await start_bot(tg, workdir, database_url, "first.log", **extra)
    restarted = None
    try:
        await tg.wait_until(
            lambda: tg.calls("getUpdates") or tg.webhook_url or bot.returncode is not None,
            timeout=STARTUP_TIMEOUT)
        if bot.returncode is not None:
            # Said at once, not after waiting out the burst's timeout for answers that never come.
            log = (workdir / "first.log").read_text(encoding="utf-8", errors="replace")
            raise RuntimeError(f"the bot exited with {bot.returncode} at start:\n{log[-2000:]}")
        people: list[User] = [tg.user(first_user + n, f"사용자{n}") for n in range(users)]
        asked = {user.id: QUESTIONS[n % len(QUESTIONS)] for n, user in enumerate(people)}
        for user in people:
            tg.send_text(user, asked[user.id])
        await tg.wait_until(
            lambda: sum(1 for u in people if tg.messages_to(u)) >= int(users * at.answered),
            timeout=timeout)
        if at.in_flight:
            tg.hold("sendMessage", delivered=at.in_flight == "sent")
            await tg.wait_until(lambda: tg.held("sendMessage") >= FIRST_SENDS_IN_FLIGHT,
                                timeout=timeout)
        stopped_at = time.monotonic()
        bot.send_signal(stop)
        await asyncio.wait_for(bot.wait(), timeout=60)
        tg.release()
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
        burst.replies = {u.id: [m.text or "" for m in tg.messages_to(u)] for u in people}
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
        await wait_for_change(tg, 0.2)


async def wait_for_change(tg: BotApiStandIn, seconds: float) -> None:
    """Until the stand-in sees a request, or `seconds` (the bot's database changes too)."""
    with contextlib.suppress(TimeoutError):
        await tg.wait_until(lambda: False, timeout=seconds)


async def crash_scenario(database_url: str | None, users: int,
                         stop: signal.Signals = signal.SIGKILL,
                         at: KillPoint = KillPoint()) -> Burst:
    """One interrupted burst on a fresh database: an SQLite file, or a new database on the
    PostgreSQL server of `database_url`."""
    with tempfile.TemporaryDirectory(prefix="maxbot-crash-") as folder:
        workdir = Path(folder)
        name = f"maxbot_crash_{uuid.uuid4().hex[:10]}"
        url = (f"sqlite+aiosqlite:///{workdir / 'crash.db'}" if database_url is None
               else await create_database(database_url, name))
        try:
            async with BotApiStandIn() as tg:
                return await interrupted_burst(tg, workdir, url, users, stop, at=at)
        finally:
            if database_url is not None:
                await drop_database(database_url, name)


def run_crash_scenario(database_url: str | None, users: int) -> dict[str, int]:
    """SIGKILL mid-burst and restart: questions lost, users left without an answer, and
    replies users saw twice without being told it may be a repeat (all should be 0), and
    those marked as a possible repeat. `database_url`: a PostgreSQL server (a throwaway
    database is made on it), or None for a fresh SQLite file. Blocking (it runs its own event
    loop): call it outside one, or `await crash_scenario(...)` inside."""
    burst = asyncio.run(crash_scenario(database_url, users))
    return {"questions_lost": burst.questions_lost,
            "users_without_answer": burst.users_without_answer,
            "unmarked_duplicates": burst.unmarked_duplicates,
            "marked_repeats": burst.marked_duplicates}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.crash", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--database-url", help="a PostgreSQL server (postgresql+asyncpg://…); "
                        "also run there")
    parser.add_argument("--quick", action="store_true",
                        help="only the kill after a third answered, as before")
    args = parser.parse_args(argv)
    targets: list[tuple[str, str | None]] = [("SQLite", None)]
    if args.database_url:
        targets.append(("PostgreSQL", args.database_url))
    failed = False
    points = [KillPoint()] if args.quick else list(KILL_POINTS)
    for label, url in targets:
        for point in points:
            killed = asyncio.run(crash_scenario(url, args.users, signal.SIGKILL, point))
            print(f"{label}: {args.users} users, SIGKILL {point}: questions lost "
                  f"{killed.questions_lost}, users without an answer "
                  f"{killed.users_without_answer}, duplicates seen by users "
                  f"{killed.duplicates} ({killed.marked_duplicates} marked as a possible "
                  f"repeat, {killed.unmarked_duplicates} not); first answers marked as a "
                  f"possible repeat {killed.marked_first_answers}", flush=True)
            failed |= any((killed.questions_lost, killed.users_without_answer,
                           killed.unmarked_duplicates))
        termed = asyncio.run(crash_scenario(url, args.users, signal.SIGTERM))
        print(f"{label}: SIGTERM after {args.users // 3} answers stopped the bot in "
              f"{termed.stop_seconds:.1f} s; then questions lost {termed.questions_lost}, "
              f"users without an answer {termed.users_without_answer}, duplicates "
              f"{termed.duplicates} ({termed.marked_duplicates} marked)", flush=True)
        failed |= any((termed.questions_lost, termed.users_without_answer,
                       termed.unmarked_duplicates))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

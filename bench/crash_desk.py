"""A bot process killed while it delivers the secretariat's replies: what askers and the
secretariat miss, and what they see twice.

    python -m bench.crash_desk [--askers 8] [--database-url postgresql+asyncpg://…]

`--askers` people each ask a question the knowledge base cannot answer; the follow-ups are
posted to the secretariat group; then a member replies to every post at once, and
`maxbot run` is killed with SIGKILL: once half of the askers have the secretariat's answer
(wherever the bot is then: delivering, recording, confirming in the group), and with every
delivery held by "Telegram" before it takes them (`in flight, not sent`) or after (`in flight,
sent`): the moments a delivery's fate is unknown to the bot. It is started again on the same
database and left to finish. Counted, for SQLite and (with --database-url) PostgreSQL:

* askers without the secretariat's answer, and answers seen twice (marked as a possible
  repeat, or not: must be 0);
* replies the group was never told were delivered, and confirmations seen twice;
* follow-ups not marked answered although their asker has the answer.

Askers are kept few (8 by default): the group takes 20 messages a minute, and each asker
costs it a post and a confirmation.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import select

from bench.crash import REPEAT_NOTE, STARTUP_TIMEOUT, start_bot, wait_for_change
from bot.storage.database import Database
from bot.storage.models import FollowUp, InboxUpdate
from testing.standin import BotApiStandIn, User
from testing.throwaway_db import create_database, drop_database

GROUP = -1001900
MEMBER = 7_000_001
UNANSWERABLE = "투자 한도가 기업당 얼마예요?"
ANSWER_MARK = "사무국 답변"  # bot/templates/ko/secretariat_answer.html.j2
CONFIRMED_MARK = "전달했습니다"  # bot/templates/ko/secretariat_delivered.html.j2
KILL_POINTS = ("half delivered", "in flight, not sent", "in flight, sent")


@dataclass
class DeskCrash:
    """What askers and the secretariat saw after a kill while replies were delivered."""

    answers: dict[int, list[str]] = field(default_factory=dict)  # asker -> answers seen
    confirmations: list[str] = field(default_factory=list)  # the group's, one a reply
    replies: int = 0
    unanswered_followups: int = 0  # delivered, but not recorded as answered
    unfinished: int = 0

    @property
    def askers_without_answer(self) -> int:
        return sum(1 for texts in self.answers.values() if not texts)

    @property
    def answer_duplicates(self) -> int:
        return sum(max(0, len(texts) - 1) for texts in self.answers.values())

    @property
    def unmarked_answer_duplicates(self) -> int:
        return sum(1 for texts in self.answers.values() for text in texts[1:]
                   if REPEAT_NOTE not in text)

    @property
    def marked_first_answers(self) -> int:
        """Askers whose only answer says it may be a repeat: the kill came before Telegram
        had the first."""
        return sum(1 for texts in self.answers.values()
                   if len(texts) == 1 and REPEAT_NOTE in texts[0])

    @property
    def confirmations_missing(self) -> int:
        return max(0, self.replies - len(self.confirmations))

    @property
    def confirmation_duplicates(self) -> int:
        return max(0, len(self.confirmations) - self.replies)

    @property
    def unmarked_confirmation_duplicates(self) -> int:
        marked = sum(1 for text in self.confirmations if REPEAT_NOTE in text)
        return max(0, self.confirmation_duplicates - marked)

    def summary(self) -> str:
        return (f"askers without the answer {self.askers_without_answer}, answers seen twice "
                f"{self.answer_duplicates} ({self.unmarked_answer_duplicates} unmarked), "
                f"only answer marked as a possible repeat {self.marked_first_answers}; "
                f"replies the group was not told of {self.confirmations_missing}, "
                f"confirmations seen twice {self.confirmation_duplicates} "
                f"({self.unmarked_confirmation_duplicates} unmarked); follow-ups delivered "
                f"but not recorded answered {self.unanswered_followups}")

    @property
    def failed(self) -> bool:
        return any((self.askers_without_answer, self.unmarked_answer_duplicates,
                    self.confirmations_missing, self.unmarked_confirmation_duplicates,
                    self.unanswered_followups, self.unfinished))


def _answers(tg: BotApiStandIn, asker: User) -> list[str]:
    return [m.text or "" for m in tg.messages_to(asker)
            if m.kind == "sent" and ANSWER_MARK in (m.text or "")]


def _posts(tg: BotApiStandIn) -> list:
    return [m for m in tg.messages_to(GROUP) if m.kind == "sent"
            and any((data or "").startswith("sc:") for _, data in m.buttons)]


def _confirmations(tg: BotApiStandIn) -> list[str]:
    return [m.text or "" for m in tg.messages_to(GROUP)
            if m.kind == "sent" and CONFIRMED_MARK in (m.text or "")]


async def desk_crash(tg: BotApiStandIn, workdir: Path, database_url: str, askers: int,
                     at: str, timeout: float = 240.0) -> DeskCrash:
    """Askers ask, the group gets the follow-ups, a member replies to each, the bot is
    killed at `at` (one of KILL_POINTS), started again and left to finish."""
    member = tg.user(MEMBER, "사무국")
    tg.group(GROUP, "사무국", members=[member])
    extra = {"SECRETARIAT_CHAT_ID": str(GROUP)}
    bot = await start_bot(tg, workdir, database_url, "first.log", **extra)
    restarted = None
    database = Database(database_url, workdir / "reader-spool.jsonl")
    try:
        await tg.wait_until(lambda: tg.calls("getUpdates") or bot.returncode is not None,
                            timeout=STARTUP_TIMEOUT)
        people = [tg.user(800_000 + n, f"문의자{n}") for n in range(askers)]
        for user in people:
            tg.send_text(user, UNANSWERABLE)
        await tg.wait_until(lambda: len(_posts(tg)) >= askers
                            and all(tg.messages_to(u) for u in people), timeout=timeout)
        posts = _posts(tg)
        if at != "half delivered":
            tg.hold("sendMessage", delivered=at == "in flight, sent")
        for n, post in enumerate(posts):
            tg.send_text(member, f"답변드립니다: 한도는 공고를 따릅니다 ({n}).", chat=GROUP,
                         reply_to=post)
        if at == "half delivered":
            await tg.wait_until(lambda: sum(1 for u in people if _answers(tg, u))
                                >= askers // 2, timeout=timeout)
        else:
            await tg.wait_until(lambda: tg.held("sendMessage") >= askers, timeout=timeout)
        bot.send_signal(signal.SIGKILL)
        await asyncio.wait_for(bot.wait(), timeout=60)
        tg.release()

        restarted = await start_bot(tg, workdir, database_url, "restarted.log", **extra)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and restarted.returncode is None:
            if (all(_answers(tg, u) for u in people) and len(_confirmations(tg)) >= askers
                    and not await _unfinished(database)):
                break
            await wait_for_change(tg, 0.2)
        crash = DeskCrash(replies=len(posts))
        crash.answers = {u.id: _answers(tg, u) for u in people}
        crash.confirmations = _confirmations(tg)
        crash.unfinished = await _unfinished(database)
        async with database.session() as session:
            crash.unanswered_followups = len((await session.exec(
                select(FollowUp.id).where(FollowUp.status != "answered"))).all())
        return crash
    finally:
        for process in (bot, restarted):
            if process is not None and process.returncode is None:
                process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), timeout=30)
                except TimeoutError:
                    process.kill()
                    await process.wait()
        await database.close()


async def _unfinished(database: Database) -> int:
    async with database.session() as session:
        return len((await session.exec(
            select(InboxUpdate.update_id).where(InboxUpdate.state != "done"))).all())


async def desk_crash_scenario(database_url: str | None, askers: int, at: str) -> DeskCrash:
    """One kill on a fresh database: an SQLite file, or a new database on the PostgreSQL
    server of `database_url`."""
    with tempfile.TemporaryDirectory(prefix="maxbot-desk-crash-") as folder:
        workdir = Path(folder)
        name = f"maxbot_desk_{uuid.uuid4().hex[:10]}"
        url = (f"sqlite+aiosqlite:///{workdir / 'desk.db'}" if database_url is None
               else await create_database(database_url, name))
        try:
            async with BotApiStandIn() as tg:
                return await desk_crash(tg, workdir, url, askers, at)
        finally:
            if database_url is not None:
                await drop_database(database_url, name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.crash_desk", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--askers", type=int, default=8)
    parser.add_argument("--database-url", help="a PostgreSQL server (postgresql+asyncpg://…); "
                        "also run there")
    args = parser.parse_args(argv)
    targets: list[tuple[str, str | None]] = [("SQLite", None)]
    if args.database_url:
        targets.append(("PostgreSQL", args.database_url))
    failed = False
    for label, url in targets:
        for at in KILL_POINTS:
            crash = asyncio.run(desk_crash_scenario(url, args.askers, at))
            print(f"{label}: {args.askers} replies, SIGKILL {at}: {crash.summary()}",
                  flush=True)
            failed |= crash.failed
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

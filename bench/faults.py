"""Fault benchmark: what people would miss or see twice when things go wrong. Every figure
must be 0.

    python -m bench.faults [--users 100] [--outage-users 20] [--outage-seconds 20]
                           [--postgres postgresql+asyncpg://user@host/db]

Per database (SQLite, and PostgreSQL when a server is given), the real bot (testing/harness.py)
runs against the Bot API stand-in, which keeps Telegram's flood limits, with a secretariat
group:

- burst: `--users` people ask at once, every third question one the knowledge base cannot
  answer. Counted: follow-ups promised ("접수번호 N" in a reply) but never posted to the group,
  askers without a reply, and duplicates (a second reply to one question, a follow-up posted
  twice).
- Bot API failing: sendMessage answers 502 for `--outage-seconds` while `--outage-users`
  people ask; then it recovers. Counted: replies lost (askers who never get theirs), follow-ups
  not posted, duplicates.
- crash: questions lost after SIGKILL mid-burst, from bench/crash.py's run_crash_scenario
  (written separately); shown as "n/a" while that module is absent.
- crash at the desk: the bot killed once half of 6 secretariat replies reached their askers
  (bench/crash_desk.py): askers without the answer, replies the group was not told of,
  follow-ups not recorded answered, answers and confirmations seen twice unmarked.

A lost item is waited for up to `--patience` seconds after the last one arrived: posting to a
group is limited to 20 messages a minute, so a burst's follow-ups take minutes to post.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import logging
import re
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.crash_desk import DeskCrash, desk_crash_scenario
from bot.knowledge import load_index
from index import KnowledgeIndex
from testing.harness import RunningBot, bot_settings, running_bot
from testing.standin import BotApiStandIn
from testing.throwaway_db import create_database, drop_database

ROOT = Path(__file__).resolve().parent.parent
GROUP = -1001900
MEMBER = 7_000_001
ANSWERABLE = ("국민성장펀드 규모는?", "M.AX 얼라이언스가 뭐예요?")
UNANSWERABLE = "투자 한도가 기업당 얼마예요?"
DESK_ASKERS = 6  # a post and a confirmation each: within the group's 20 a minute


@dataclass
class Figures:
    """What one scenario left people missing or seeing twice."""

    asked: int = 0
    promised: int = 0  # follow-up numbers given to askers
    unanswered: int = 0  # askers who never got their reply
    unposted: int = 0  # follow-ups promised but never posted to the group
    duplicates: int = 0  # second replies to a question, second posts of a follow-up
    seconds: float = 0.0
    peak_connections: int = 0  # the most database connections in use at once
    notes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return self.unanswered == self.unposted == self.duplicates == 0


def _question(n: int) -> str:
    """Every third question needs the secretariat."""
    return UNANSWERABLE if n % 3 == 2 else ANSWERABLE[n % 2]


def _posted(tg: BotApiStandIn) -> Counter[int]:
    return Counter(int(found.group(1)) for m in tg.messages_to(GROUP) if m.kind == "sent"
                   if (found := re.search(r"새 문의 #(\d+)", m.text or "")))


# What a reply says when the question went to the secretariat: with its number, or queued
# without one while the database was away (the number comes when the spool is replayed).
PROMISE = re.compile(r"접수번호 \d+|질문을 접수했습니다")


def _tally(tg: BotApiStandIn, users: list, figures: Figures) -> None:
    promised = 0
    figures.unanswered = figures.duplicates = 0
    for user in users:
        replies = [m for m in tg.messages_to(user) if m.kind == "sent"]
        if not replies:
            figures.unanswered += 1
        figures.duplicates += max(0, len(replies) - 1)
        promised += sum(1 for reply in replies[:1] if PROMISE.search(reply.text or ""))
    posted = _posted(tg)
    figures.promised = promised
    figures.unposted = max(0, promised - len(posted))
    figures.duplicates += sum(count - 1 for count in posted.values())


async def _until_settled(bot: RunningBot, users: list, figures: Figures,
                         patience: float) -> None:
    """Wait until nothing is missing, or nothing new arrived for `patience` seconds."""
    tg = bot.tg
    last_change, seen = time.monotonic(), -1
    while True:
        _tally(tg, users, figures)
        figures.peak_connections = max(figures.peak_connections,
                                       bot.database.engine.pool.checkedout())
        if figures.unanswered == 0 and figures.unposted == 0:
            return
        arrived = len(tg.calls("sendMessage"))  # tries count too: something still happens
        if arrived != seen:
            last_change, seen = time.monotonic(), arrived
        elif time.monotonic() - last_change > patience:
            return
        await asyncio.sleep(0.01)  # also samples the connections in use


async def _with_bot(database_url: str, work: Callable[[RunningBot], Awaitable[Figures]],
                    index: KnowledgeIndex) -> Figures:
    with tempfile.TemporaryDirectory(prefix="maxbot-faults-") as tmp:
        async with BotApiStandIn() as tg:
            settings = bot_settings(tg, Path(tmp), database_url=database_url,
                                    secretariat_chat_id=GROUP)
            async with running_bot(tg, settings, index) as bot:
                member = tg.user(MEMBER, "사무국")
                tg.group(GROUP, "사무국", members=[member])
                return await work(bot)


async def burst(database_url: str, users: int, index: KnowledgeIndex,
                patience: float = 90.0) -> Figures:
    """`users` people ask at once."""
    async def work(bot: RunningBot) -> Figures:
        tg, figures = bot.tg, Figures(asked=users)
        people = [tg.user(100_000 + n, f"사용자{n}") for n in range(users)]
        started = time.monotonic()
        for n, user in enumerate(people):
            tg.send_text(user, _question(n))
        await _until_settled(bot, people, figures, patience)
        figures.seconds = time.monotonic() - started
        return figures

    return await _with_bot(database_url, work, index)


async def api_outage(database_url: str, users: int, outage_seconds: float | None,
                     index: KnowledgeIndex, patience: float = 60.0) -> Figures:
    """sendMessage fails with 502 for `outage_seconds` while `users` people ask (None: until
    every reply has been refused twice, which is what the tests wait for)."""
    async def work(bot: RunningBot) -> Figures:
        tg, figures = bot.tg, Figures(asked=users)
        people = [tg.user(200_000 + n, f"장애{n}") for n in range(users)]
        started = time.monotonic()
        tg.fail("sendMessage", 502, "Bad Gateway")
        for n, user in enumerate(people):
            tg.send_text(user, _question(n))
            if outage_seconds is not None:  # spread over the outage's first half
                await asyncio.sleep(outage_seconds / users / 2)
        if outage_seconds is None:
            await tg.wait_until(
                lambda: sum(1 for r in tg.rejections if r.error_code == 502) >= 2 * users,
                timeout=patience)
        else:
            await asyncio.sleep(max(0.0, outage_seconds - (time.monotonic() - started)))
        failed = sum(1 for r in tg.rejections if r.error_code == 502)
        tg.heal()
        await _until_settled(bot, people, figures, patience)
        figures.seconds = time.monotonic() - started
        figures.notes.append(f"{failed} sendMessage calls refused with 502")
        return figures

    return await _with_bot(database_url, work, index)


def crash_scenario(database_url: str | None, users: int) -> dict[str, int] | None:
    """Questions lost after SIGKILL mid-burst: bench/crash.py (written separately) measures
    it, on a PostgreSQL server or (None) a fresh SQLite file. None while that module is not
    there."""
    try:
        crash = importlib.import_module("bench.crash")
    except ModuleNotFoundError:
        return None
    outcome = crash.run_crash_scenario(database_url, users)
    if inspect.isawaitable(outcome):  # a coroutine function is fine too (we are in a thread)
        outcome = asyncio.run(_awaited(outcome))
    return dict(outcome)


async def _awaited(outcome: Awaitable[dict[str, int]]) -> dict[str, int]:
    return await outcome


@dataclass
class Report:
    database: str
    burst: Figures
    outage: Figures
    crash: dict[str, int] | None = None
    desk: DeskCrash | None = None

    @property
    def clean(self) -> bool:
        # A reply sent again after the kill and marked as a possible repeat is by design.
        crash_clean = self.crash is None or not any(
            count for figure, count in self.crash.items() if figure != "marked_repeats")
        desk_clean = self.desk is None or not self.desk.failed
        return self.burst.clean and self.outage.clean and crash_clean and desk_clean


@asynccontextmanager
async def fresh_database(kind: str, postgres: str | None) -> AsyncIterator[str]:
    """An empty database for one scenario: an SQLite file, or a throwaway PostgreSQL one."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="maxbot-faults-db-") as tmp:
            yield f"sqlite+aiosqlite:///{tmp}/maxbot.db"
        return
    assert postgres is not None
    name = f"maxbot_faults_{uuid.uuid4().hex[:10]}"
    url = await create_database(postgres, name)
    try:
        yield url
    finally:
        await drop_database(postgres, name)


async def measure(kind: str, postgres: str | None, users: int, outage_users: int,
                  outage_seconds: float | None, index: KnowledgeIndex,
                  crash: bool = True) -> Report:
    """Every scenario on a fresh database of `kind` ("sqlite" or "postgresql")."""
    async with fresh_database(kind, postgres) as url:
        burst_figures = await burst(url, users, index)
    async with fresh_database(kind, postgres) as url:
        outage_figures = await api_outage(url, outage_users, outage_seconds, index)
    crashed = None
    if crash:
        # bench/crash.py: the other half of this benchmark, called here once it exists. It
        # makes its own database: a fresh SQLite file (None), or one on the server given.
        server = None if kind == "sqlite" else postgres
        crashed = await asyncio.to_thread(crash_scenario, server, users)
    desk = None
    if crash:
        desk = await desk_crash_scenario(None if kind == "sqlite" else postgres, DESK_ASKERS,
                                         "half delivered")
    return Report(kind, burst_figures, outage_figures, crashed, desk)


def describe(report: Report) -> str:
    b, o = report.burst, report.outage
    lines = [
        f"{report.database}:",
        f"  burst of {b.asked} questions ({b.seconds:.0f} s): follow-ups promised "
        f"{b.promised}, not posted {b.unposted}; askers without a reply {b.unanswered}; "
        f"duplicates seen {b.duplicates}; peak database connections {b.peak_connections}",
        f"  Bot API failing ({o.asked} questions; {'; '.join(o.notes)}; {o.seconds:.0f} s): "
        f"replies lost {o.unanswered}; follow-ups promised {o.promised}, not posted "
        f"{o.unposted}; duplicates seen {o.duplicates}",
    ]
    if report.crash is None:
        lines.append("  SIGKILL mid-burst: n/a (bench/crash.py not present)")
    else:
        lines.append("  SIGKILL mid-burst: " + ", ".join(f"{k} {v}"
                                                       for k, v in report.crash.items()))
    if report.desk is not None:
        lines.append(f"  SIGKILL while {report.desk.replies} secretariat replies were "
                     f"delivered: {report.desk.summary()}")
    lines.append(f"  all zero: {'yes' if report.clean else 'NO'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100, help="askers in the burst")
    parser.add_argument("--outage-users", type=int, default=20,
                        help="askers while the Bot API fails")
    parser.add_argument("--outage-seconds", type=float, default=20.0,
                        help="how long sendMessage answers 502")
    parser.add_argument("--postgres", metavar="URL",
                        help="a PostgreSQL server (SQLAlchemy URL) to measure on too")
    opts = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    index = load_index(ROOT / "knowledge")
    kinds = ["sqlite"] + (["postgresql"] if opts.postgres else [])
    clean = True
    for kind in kinds:
        report = asyncio.run(measure(kind, opts.postgres, opts.users, opts.outage_users,
                                     opts.outage_seconds, index))
        print(describe(report), flush=True)
        clean = clean and report.clean
    if not opts.postgres:
        print("postgresql: not measured (give --postgres URL)")
    sys.exit(0 if clean else 1)


if __name__ == "__main__":
    main()

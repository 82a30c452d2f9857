"""Telegram throughput: the real bot against a bare python-telegram-bot echo bot, end to end.

One script over 400 lines on purpose: its processes, phases and report read as one procedure.

    python -m bench.telegram_throughput [--updates 2000] [--users 200] [--runs 3]

Everything runs as separate processes on loopback: the Bot API stand-in (`python -m
testing.standin`, rate limits off), and per run one bot process, either a bare PTB echo bot with the
same HTTP settings as `bot.app.build_application`, or the real bot built by `build_application`
and started the way testing/harness.py starts it. For each run the benchmark

1. warms the bot up with a few updates (first-call costs are not part of the numbers),
2. bursts N text updates from M users at once through POST /_standin/inject and measures the
   wall time until the stand-in has N replies (and, for the real bot, N rows in `question`),
3. sends updates one by one at Telegram's ceiling (30/s) and measures each reply's latency.

Latency comes from the stand-in's counters (GET /_standin/stats, polled every few ms): the
stand-in logs a time per request, but only in its own process, so the k-th reply is dated by the
poll at which its `bot_messages` count reached k. In a burst every update is injected at the same
moment, so those times are exact per-update latencies up to the poll interval; in the paced
phase the k-th reply is matched to the k-th injection (exact while replies do not overtake).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import functools
import html
import json
import logging
import math
import os
import re
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from testing.throwaway_db import asyncpg_dsn, create_database, drop_database

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "123456789:BenchTokenBenchTokenBenchToken00"
TELEGRAM_CEILING = 30  # messages per second per bot, Telegram's documented broadcast limit
# The bot's log line when the database was away: "... 3 question(s) spooled".
SPOOLED = re.compile(r"(\d+) question\(s\) spooled")
# --pin: the bot (echo or maxbot) alone on one core; the stand-in and this driver on the other.
PINNED = {"bot": {0}, "standin": {1}}
BENCH_USER = 1_000_000  # first user id of the measured users
WARMUP_USER = 2_000_000  # first user id of the warm-up users
STARTUP_TIMEOUT = 90.0

# What company staff ask: answered from the knowledge base, on topic but unanswerable (queued for
# the secretariat), and small talk; kinds alternate so consecutive inject calls differ.
QUESTIONS: tuple[tuple[str, str], ...] = (
    ("국민성장펀드 규모는?", "answered"),
    ("대출 금리가 몇 %예요?", "unanswered"),
    ("안녕하세요", "smalltalk"),
    ("M.AX 얼라이언스 분과", "answered"),
    ("펀드 운용사는 어디인가요?", "unanswered"),
    ("초저리 대출 있나요", "answered"),
    ("오늘 날씨 어때?", "smalltalk"),
    ("첨단전략산업 투자 대상은?", "answered"),
    ("지원 신청은 어떻게 하나요?", "unanswered"),
    ("감사합니다", "smalltalk"),
)


# --------------------------------------------------------------------------- bot processes


def _echo_application(base_url: str, token: str) -> Any:
    """A bare PTB bot with the HTTP settings bot.app.build_application uses, echoing text."""
    from telegram import Update
    from telegram.ext import ApplicationBuilder, ContextTypes, MessageHandler, filters
    from telegram.request import HTTPXRequest

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        await message.reply_html(html.escape(message.text or ""))

    application = (
        ApplicationBuilder()
        .token(token)
        .base_url(f"{base_url}/bot")
        .base_file_url(f"{base_url}/file/bot")
        .request(HTTPXRequest(connection_pool_size=16, read_timeout=15, write_timeout=15))
        .get_updates_request(HTTPXRequest(connection_pool_size=2, read_timeout=40))
        .concurrent_updates(64)
        .build()
    )
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    return application


def _real_application(base_url: str, token: str, database: Path,
                      database_url: str | None = None) -> Any:
    """The bot as bot.app builds it, with Telegram's and the per-user limits out of the way."""
    from bot.app import build_application, configure_logging
    from bot.settings import Settings

    configure_logging("INFO", sys.stderr)
    values: dict[str, Any] = {
        "telegram_bot_token": token,
        "telegram_base_url": base_url,
        "database_url": database_url or f"sqlite+aiosqlite:///{database}",
        "knowledge_dir": ROOT / "knowledge",
        "rate_limiter": False,
        "user_questions_per_minute": 100_000,
        # Keep the spool next to the benchmark's database, never in the project's var/.
        "spool_path": database.with_suffix(".spool.jsonl"),
        "secretariat_chat_id": None,
    }
    known = Settings.model_fields
    return build_application(Settings(_env_file=None, **{k: v for k, v in values.items()
                                                           if k in known}))


async def _serve_child(application: Any) -> None:
    """Start like testing/harness.py (initialize, post_init, poll, start); stop on SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await application.initialize()
    try:
        if application.post_init is not None:
            await application.post_init(application)
        await application.updater.start_polling(poll_interval=0.0, timeout=1)
        await application.start()
        print("READY", flush=True)
        await stop.wait()
    finally:
        if application.updater.running:
            await application.updater.stop()
        if application.running:
            await application.stop()
        await application.shutdown()
        if application.post_shutdown is not None:
            await application.post_shutdown(application)


def run_child(kind: str, base_url: str, token: str, database: str | None,
              database_url: str | None = None) -> None:
    if kind == "echo":
        application = _echo_application(base_url, token)
    else:
        if database is None:
            raise SystemExit("--db is required for the real bot")
        application = _real_application(base_url, token, Path(database), database_url)
    asyncio.run(_serve_child(application))


# --------------------------------------------------------------------------- process handling


def _prepare_child(cpus: set[int] | None) -> None:
    """In the child before exec: SIGKILL it if the benchmark process dies (PR_SET_PDEATHSIG),
    and keep it on `cpus` (--pin)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    if cpus:
        os.sched_setaffinity(0, cpus)


class Processes:
    """Every subprocess the benchmark starts, so that all of them are stopped whatever happens."""

    def __init__(self) -> None:
        self.started: list[asyncio.subprocess.Process] = []

    async def start(self, args: Sequence[str], log_path: Path, ready: re.Pattern[str],
                    timeout: float, cpus: set[int] | None = None
                    ) -> tuple[asyncio.subprocess.Process, re.Match[str]]:
        """Start a process and wait (bounded) for a stdout line matching `ready`."""
        with log_path.open("ab") as log:
            proc = await asyncio.create_subprocess_exec(
                *args, cwd=ROOT, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=log,
                preexec_fn=functools.partial(_prepare_child, cpus),
            )
        self.started.append(proc)
        assert proc.stdout is not None
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(f"{args[2]} not ready within {timeout:.0f}s; "
                                   f"log tail:\n{_tail(log_path)}")
            try:
                line = await asyncio.wait_for(proc.stdout.readline(), remaining)
            except TimeoutError:
                continue
            if not line:
                await asyncio.wait_for(proc.wait(), 5)
                raise RuntimeError(f"{args[2]} exited with {proc.returncode} before it was "
                                   f"ready; log tail:\n{_tail(log_path)}")
            found = ready.search(line.decode(errors="replace"))
            if found:
                return proc, found

    @staticmethod
    async def stop(proc: asyncio.subprocess.Process, timeout: float = 10.0) -> None:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await asyncio.wait_for(proc.wait(), timeout)

    async def stop_all(self) -> None:
        for proc in reversed(self.started):
            with contextlib.suppress(Exception):
                await self.stop(proc, timeout=3.0)

    def kill_remaining(self) -> None:
        """Last resort outside the event loop: SIGKILL whatever has not been reaped."""
        for proc in self.started:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(proc.pid, signal.SIGKILL)


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _loadavg() -> str:
    with open("/proc/loadavg") as loadavg:
        return " ".join(loadavg.read().split()[:3])


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return math.nan


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


# --------------------------------------------------------------------------- stand-in control


class StandIn:
    def __init__(self, client: httpx.AsyncClient, base_url: str) -> None:
        self.client = client
        self.base_url = base_url

    async def stats(self) -> dict[str, Any]:
        response = await self.client.get(f"{self.base_url}/_standin/stats")
        response.raise_for_status()
        return response.json()

    async def replies(self) -> int:
        return int((await self.stats())["bot_messages"])

    async def inject(self, text: str, count: int, users: int, first_user_id: int) -> None:
        response = await self.client.post(
            f"{self.base_url}/_standin/inject",
            content=json.dumps({"count": count, "users": users, "text": text,
                                "first_user_id": first_user_id}),
        )
        response.raise_for_status()
        if response.json().get("injected") != count:
            raise RuntimeError(f"stand-in injected {response.json()} instead of {count}")


class RowCounter:
    """Counts rows of the bot's `question` table from outside the bot."""

    async def count(self) -> int:
        """The row count, or -1 when it cannot be read just now."""
        raise NotImplementedError

    async def baseline(self) -> int:
        """The row count now, retried while the bot holds the database busy or has not
        created the table yet (bounded)."""
        for _ in range(100):
            count = await self.count()
            if count >= 0:
                return count
            await asyncio.sleep(0.05)
        raise RuntimeError("cannot read the question table")


class QuestionTable(RowCounter):
    """The counts in the bot's SQLite file, read-only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None

    async def count(self) -> int:
        try:
            if self._connection is None:
                self._connection = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True,
                                                   timeout=0.5)
            return int(self._connection.execute("SELECT count(*) FROM question").fetchone()[0])
        except sqlite3.OperationalError:
            return -1  # busy or not created yet: ask again on the next poll

    async def statuses(self) -> dict[str, int]:
        assert self._connection is not None
        rows = self._connection.execute(
            "SELECT status, count(*) FROM question GROUP BY status ORDER BY status")
        return {status: count for status, count in rows}

    async def followups(self) -> int:
        assert self._connection is not None
        return int(self._connection.execute("SELECT count(*) FROM followup").fetchone()[0])

    async def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class PostgresQuestionTable(RowCounter):
    """The counts in a PostgreSQL database (--database-url), through asyncpg."""

    def __init__(self, url: str) -> None:
        self.dsn = asyncpg_dsn(url)
        self._connection: Any = None

    async def _connect(self) -> Any:
        import asyncpg

        if self._connection is None:
            self._connection = await asyncpg.connect(self.dsn)
        return self._connection

    async def count(self) -> int:
        import asyncpg

        try:
            return int(await (await self._connect()).fetchval("SELECT count(*) FROM question"))
        except asyncpg.UndefinedTableError:
            return -1  # the bot has not migrated yet

    async def statuses(self) -> dict[str, int]:
        rows = await (await self._connect()).fetch(
            "SELECT status, count(*) FROM question GROUP BY status ORDER BY status")
        return {row[0]: row[1] for row in rows}

    async def followups(self) -> int:
        return int(await (await self._connect()).fetchval("SELECT count(*) FROM followup"))

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None


Table = QuestionTable | PostgresQuestionTable


def burst_plan(count: int, users: int, texts: Sequence[str]) -> list[tuple[str, int, int]]:
    """(text, count, first_user_id) inject calls: update n comes from user n % users, and the
    text changes every chunk, so each user asks several different questions."""
    chunk = max(1, min(users, math.ceil(count / (2 * len(texts)))))
    plan, n, calls = [], 0, 0
    while n < count:
        first = n % users
        size = min(chunk, users - first, count - n)
        plan.append((texts[calls % len(texts)], size, BENCH_USER + first))
        n += size
        calls += 1
    return plan


def crossing_times(samples: list[tuple[float, int]], total: int) -> list[float]:
    """For k = 1..total, when the reply count reached k: midway between the poll that first
    saw it and the poll before."""
    times, j = [], 0
    for k in range(1, total + 1):
        while samples[j][1] < k:
            j += 1
        times.append((samples[j - 1][0] + samples[j][0]) / 2 if j else samples[j][0])
    return times


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


async def wait_done(tg: StandIn, replies_before: int, expected: int, table: Table | None,
                    rows_before: int, timeout: float, poll: float
                    ) -> tuple[list[tuple[float, int]], float, float | None]:
    """Poll until `expected` new replies (and rows); returns the samples and when each was done."""
    samples: list[tuple[float, int]] = []
    replies_at: float | None = None
    rows_at: float | None = None
    deadline = time.monotonic() + timeout
    while True:
        asked = time.monotonic()
        replies = await tg.replies() - replies_before
        now = time.monotonic()
        samples.append(((asked + now) / 2, replies))
        if replies_at is None and replies >= expected:
            replies_at = crossing_times(samples, expected)[-1]
        if table is not None and rows_at is None and await table.count() - rows_before >= expected:
            rows_at = time.monotonic()
        if replies_at is not None and (table is None or rows_at is not None):
            return samples, replies_at, rows_at
        if now > deadline:
            rows = await table.count() - rows_before if table else "n/a"
            raise TimeoutError(f"after {timeout:.0f}s: {replies}/{expected} replies, "
                               f"{rows}/{expected} rows")
        await asyncio.sleep(poll)


# --------------------------------------------------------------------------- one run


@dataclass
class Run:
    kind: str
    number: int
    updates: int
    seconds: float = math.nan  # injection start until every reply (and row) is there
    replies_seconds: float = math.nan
    rows_seconds: float = math.nan
    burst_p50: float = math.nan  # seconds from injection to reply, in the burst
    burst_p95: float = math.nan
    paced_p50: float = math.nan  # seconds from injection to reply, at the paced rate
    paced_p95: float = math.nan
    paced_max: float = math.nan
    rss_mb: float = math.nan
    bot_cpu: float = math.nan  # CPU seconds per wall second during the burst
    bot_cpu_seconds: float = math.nan  # CPU seconds the bot process used in the burst
    standin_cpu: float = math.nan
    statuses: dict[str, int] = field(default_factory=dict)
    followups: int = 0
    api_errors: dict[str, int] = field(default_factory=dict)
    log_problems: list[str] = field(default_factory=list)
    spooled: int = 0  # questions the bot wrote to its spool because the database was too slow

    @property
    def rate(self) -> float:
        return self.updates / self.seconds

    @property
    def replies_rate(self) -> float:
        return self.updates / self.replies_seconds


@dataclass
class Options:
    updates: int
    users: int
    runs: int
    warmup: int
    paced_rate: float
    paced_seconds: float
    timeout: float
    workdir: Path
    pin: bool = False
    database_url: str | None = None  # a PostgreSQL server instead of a fresh SQLite file


async def one_run(kind: str, number: int, opts: Options, procs: Processes) -> Run:
    rundir = opts.workdir / f"{kind}-{number}"
    rundir.mkdir(parents=True)
    standin, found = await procs.start(
        [sys.executable, "-m", "testing.standin", "--port", "0", "--token", TOKEN,
         "--global-limit", "0", "--no-chat-limits"],
        rundir / "standin.log", re.compile(r"listening on (http://\S+)"), 30,
        cpus=PINNED["standin"] if opts.pin else None)
    base_url = found.group(1)
    database = rundir / "bench.db"
    child_args = [sys.executable, "-m", "bench.telegram_throughput", "--child", kind,
                  "--base-url", base_url, "--token", TOKEN]
    table: Table | None = None
    database_name: str | None = None
    if kind == "bot" and opts.database_url:
        database_name = f"maxbot_bench_{os.getpid()}_{number}"
        url = await create_database(opts.database_url, database_name)
        child_args += ["--db", str(database), "--database-url", url]
        table = PostgresQuestionTable(url)
    elif kind == "bot":
        child_args += ["--db", str(database)]
        table = QuestionTable(database)
    bot_log = rundir / f"{kind}.log"
    run = Run(kind, number, opts.updates)
    texts = [text for text, _ in QUESTIONS]
    try:
        child, _ = await procs.start(child_args, bot_log, re.compile(r"^READY"), STARTUP_TIMEOUT,
                                     cpus=PINNED["bot"] if opts.pin else None)
        async with httpx.AsyncClient(trust_env=False, timeout=10.0) as client:
            tg = StandIn(client, base_url)

            # Warm-up: first questions pay for connections, Kiwi's first call, SQL compilation.
            before = await tg.replies()
            rows_before = await table.baseline() if table else 0
            for text, count, first in burst_plan(opts.warmup, opts.warmup, texts):
                await tg.inject(text, count, count, first - BENCH_USER + WARMUP_USER)
            await wait_done(tg, before, opts.warmup, table, rows_before, opts.timeout, 0.01)

            # Burst: N updates from M users at once.
            before = await tg.replies()
            rows_before = await table.baseline() if table else 0
            cpu_before = cpu_seconds(child.pid), cpu_seconds(standin.pid)
            start = time.monotonic()
            for text, count, first in burst_plan(opts.updates, opts.users, texts):
                await tg.inject(text, count, count, first)
            samples, replies_at, rows_at = await wait_done(
                tg, before, opts.updates, table, rows_before, opts.timeout, 0.01)
            done = max(replies_at, rows_at or 0.0)
            wall = time.monotonic() - start
            run.bot_cpu_seconds = cpu_seconds(child.pid) - cpu_before[0]
            run.bot_cpu = run.bot_cpu_seconds / wall
            run.standin_cpu = (cpu_seconds(standin.pid) - cpu_before[1]) / wall
            run.seconds = done - start
            run.replies_seconds = replies_at - start
            run.rows_seconds = rows_at - start if rows_at else math.nan
            crossings = crossing_times(samples, opts.updates)
            run.burst_p50 = percentile(crossings, 0.5) - start
            run.burst_p95 = percentile(crossings, 0.95) - start

            # Paced: one update at a time at the given rate; latency per update.
            await paced(tg, run, opts, table, texts)

            run.rss_mb = peak_rss_mb(child.pid)
            stats = await tg.stats()
            run.api_errors = dict(stats["errors_by_code"])
            if stats["too_many_requests"]:
                run.api_errors["429"] = stats["too_many_requests"]
        if table is not None:
            run.statuses = await table.statuses()
            run.followups = await table.followups()
        await procs.stop(child)
        await procs.stop(standin)
    finally:
        if table is not None:
            await table.close()
        if database_name is not None:
            await drop_database(opts.database_url, database_name)
    run.log_problems = [line for line in bot_log.read_text(errors="replace").splitlines()
                        if " WARNING " in line or " ERROR " in line or "Traceback" in line]
    run.spooled = sum(int(found.group(1)) for line in run.log_problems
                      if (found := SPOOLED.search(line)))
    return run


async def paced(tg: StandIn, run: Run, opts: Options, table: Table | None,
                texts: Sequence[str]) -> None:
    count = max(1, round(opts.paced_rate * opts.paced_seconds))
    before = await tg.replies()
    rows_before = await table.baseline() if table else 0
    injected: list[float] = []

    async def inject_all() -> None:
        start = time.monotonic()
        for i in range(count):
            delay = start + i / opts.paced_rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            injected.append(time.monotonic())
            await tg.inject(texts[i % len(texts)], 1, 1, BENCH_USER + i % opts.users)

    injecting = asyncio.create_task(inject_all())
    try:
        samples, _, _ = await wait_done(tg, before, count, table, rows_before,
                                        opts.timeout + opts.paced_seconds, 0.005)
        await injecting
    finally:
        injecting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await injecting
    latencies = [t - at for t, at in zip(crossing_times(samples, count), injected, strict=True)]
    run.paced_p50 = percentile(latencies, 0.5)
    run.paced_p95 = percentile(latencies, 0.95)
    run.paced_max = max(latencies)


# --------------------------------------------------------------------------- report


def _median(runs: list[Run], attribute: str) -> float:
    values = [getattr(r, attribute) for r in runs]
    values = [v for v in values if not math.isnan(v)]
    return statistics.median(values) if values else math.nan


def describe_run(run: Run) -> str:
    text = (f"  {run.kind:4} run {run.number}: {run.rate:7.1f} updates/s "
            f"(replies {run.replies_seconds:5.2f}s")
    if run.kind == "bot":
        text += f", rows {run.rows_seconds:5.2f}s"
    text += (f"), burst p50/p95 {run.burst_p50 * 1000:5.0f}/{run.burst_p95 * 1000:5.0f} ms, "
             f"paced p50/p95/max {run.paced_p50 * 1000:4.1f}/{run.paced_p95 * 1000:4.1f}/"
             f"{run.paced_max * 1000:4.1f} ms, CPU bot {run.bot_cpu:4.0%} stand-in "
             f"{run.standin_cpu:4.0%}, peak RSS {run.rss_mb:5.0f} MB")
    if run.kind == "bot":
        text += f", spooled {run.spooled}"
    return text


def report(runs: list[Run], opts: Options) -> None:
    echo = [r for r in runs if r.kind == "echo"]
    bot = [r for r in runs if r.kind == "bot"]
    print()
    print(f"{opts.updates} updates from {opts.users} users per burst; paced phase "
          f"{opts.paced_rate:g} updates/s for {opts.paced_seconds:g}s; median of "
          f"{opts.runs} runs, each with a fresh stand-in and bot process; {os.cpu_count()} CPUs"
          + ("; bot pinned to CPU 0, stand-in to CPU 1" if opts.pin else "")
          + f"; maxbot on {'PostgreSQL' if opts.database_url else 'SQLite'}")
    header = (f"{'':22} {'updates/s':>9} {'min-max':>13} {'burst p50/p95 ms':>17} "
              f"{'paced p50/p95 ms':>17} {'peak RSS MB':>11} {'CPU bot':>7} {'CPU stand-in':>12}")
    print(header)
    print("-" * len(header))
    for name, group in (("echo bot (bare PTB)", echo),
                        ("maxbot: replied", bot), ("maxbot: replied+stored", bot)):
        if not group:
            continue
        attribute = "replies_rate" if name == "maxbot: replied" else "rate"
        rates = [getattr(r, attribute) for r in group]
        spread = f"{min(rates):.0f}-{max(rates):.0f}"
        line = f"{name:22} {statistics.median(rates):9.1f} {spread:>13}"
        if name != "maxbot: replied+stored":  # the same processes as the row above
            ms = {key: _median(group, key) * 1000
                  for key in ("burst_p50", "burst_p95", "paced_p50", "paced_p95")}
            burst = f"{ms['burst_p50']:.0f} / {ms['burst_p95']:.0f}"
            paced = f"{ms['paced_p50']:.1f} / {ms['paced_p95']:.1f}"
            line += (f" {burst:>17} {paced:>17} {_median(group, 'rss_mb'):11.0f} "
                     f"{_median(group, 'bot_cpu'):7.0%} {_median(group, 'standin_cpu'):12.0%}")
        print(line)
    if echo and bot:
        echo_rate = statistics.median(r.rate for r in echo)
        replied = statistics.median(r.replies_rate for r in bot)
        stored = statistics.median(r.rate for r in bot)
        print(f"\nmaxbot / echo bot: {replied / echo_rate:.2f} replied, "
              f"{stored / echo_rate:.2f} replied+stored")
        print(f"Telegram ceiling: {TELEGRAM_CEILING} messages/s per bot -> headroom "
              f"{stored / TELEGRAM_CEILING:.1f}x replied+stored ({stored:.0f} / "
              f"{TELEGRAM_CEILING}), {replied / TELEGRAM_CEILING:.1f}x replied")
        own_processing(echo, bot)
        spooled = [r.spooled for r in bot]
        if any(spooled):
            print(f"maxbot spooled {spooled} questions per run (database write over its "
                  f"timeout); they reach the table at the next replay")
    if bot:
        print(f"last maxbot run stored: {bot[-1].statuses}, {bot[-1].followups} follow-ups "
              f"opened (warm-up and paced questions included)")
    problems = [(r, line) for r in runs for line in r.log_problems]
    errors = [(r, r.api_errors) for r in runs if r.api_errors]
    for r, found in errors:
        print(f"! {r.kind} run {r.number}: Bot API errors {found}")
    if problems:
        print(f"! {len(problems)} warning/error lines in bot logs, first ones:")
        for r, line in problems[:5]:
            print(f"  {r.kind} run {r.number}: {line[:200]}")


def own_processing(echo: list[Run], bot: list[Run]) -> None:
    """What the bot adds to bare PTB per update, and how many updates/s that alone allows.

    Through a stand-in on the same two cores, end-to-end throughput is capped near the echo
    bot's (PTB's send path and the stand-in), so the headroom the bot's own work leaves is
    measured as a difference against the echo run next to it: in CPU (the bot process's CPU
    per update minus the echo bot's) and in wall time (1/maxbot rate - 1/echo rate).
    """
    pairs = list(zip(echo, bot, strict=False))
    cpu_ms = [1000 * (b.bot_cpu_seconds / b.updates - e.bot_cpu_seconds / e.updates)
              for e, b in pairs]
    wall_ms = [1000 * (1 / b.rate - 1 / e.rate) for e, b in pairs]
    for name, values in (("CPU", cpu_ms), ("wall", wall_ms)):
        added = statistics.median(values)
        capacity = 1000 / added if added > 0 else math.inf
        print(f"bot's own processing ({name}): {added:.2f} ms per update beyond bare PTB "
              f"(runs: {', '.join(f'{v:.2f}' for v in values)}) -> {capacity:.0f} updates/s, "
              f"{capacity / TELEGRAM_CEILING:.1f}x Telegram's {TELEGRAM_CEILING}/s")


async def benchmark(opts: Options, procs: Processes) -> list[Run]:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    runs: list[Run] = []
    started = time.monotonic()
    print(f"load average before: {_loadavg()} ({os.cpu_count()} CPUs)", flush=True)
    try:
        for number in range(1, opts.runs + 1):
            for kind in ("echo", "bot"):
                run = await one_run(kind, number, opts, procs)
                print(describe_run(run), flush=True)
                runs.append(run)
    finally:
        await procs.stop_all()
    print(f"total {time.monotonic() - started:.0f}s; load average {_loadavg()}")
    return runs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.telegram_throughput",
                                     description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--updates", type=int, default=2000, help="updates per burst")
    parser.add_argument("--users", type=int, default=200, help="distinct users in a burst")
    parser.add_argument("--runs", type=int, default=3, help="runs of each bot (median reported)")
    parser.add_argument("--warmup", type=int, default=20, help="updates before measuring")
    parser.add_argument("--paced-rate", type=float, default=TELEGRAM_CEILING,
                        help="updates per second in the latency phase")
    parser.add_argument("--paced-seconds", type=float, default=3.0)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per phase")
    parser.add_argument("--keep", action="store_true", help="keep logs and databases")
    parser.add_argument("--pin", action=argparse.BooleanOptionalAction, default=True,
                        help="bot on CPU 0, stand-in and benchmark on CPU 1, as a bot has its "
                             "machine to itself in production and steadier (default: on)")
    parser.add_argument("--child", choices=("echo", "bot"), help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--token", default=TOKEN, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--database-url",
                        help="a PostgreSQL server (postgresql+asyncpg://user@host:port/db) to "
                             "benchmark on instead of SQLite: each run creates and drops its "
                             "own database there")
    args = parser.parse_args(argv)
    if args.child:
        run_child(args.child, args.base_url, args.token, args.db, args.database_url)
        return
    if min(args.updates, args.users, args.runs, args.warmup) < 1 or args.paced_rate <= 0:
        parser.error("--updates, --users, --runs, --warmup and --paced-rate must be positive")

    workdir = Path(tempfile.mkdtemp(prefix="maxbot-tg-bench-"))
    opts = Options(args.updates, args.users, args.runs, args.warmup, args.paced_rate,
                   args.paced_seconds, args.timeout, workdir, args.pin, args.database_url)
    if args.pin and len(os.sched_getaffinity(0)) < 2:
        parser.error("--pin needs two CPUs (use --no-pin)")
    if args.pin:
        os.sched_setaffinity(0, PINNED["standin"])
    procs = Processes()
    try:
        runs = asyncio.run(benchmark(opts, procs))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print(f"interrupted; logs kept in {workdir}", file=sys.stderr)
        raise SystemExit(130) from None
    except BaseException:
        print(f"benchmark failed; logs kept in {workdir}", file=sys.stderr)
        raise
    finally:
        procs.kill_remaining()
    report(runs, opts)
    if args.keep:
        print(f"logs and databases: {workdir}")
    else:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

"""What the handlers share: settings, the served index, the database, the per-user limit,
who is asking, and waking the follow-up poster."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from telegram import User
from telegram.ext import Application, ContextTypes

from bot.answering import Answer, AnsweringRules, answer, answer_many
from bot.delivery.inbox import Inbox
from bot.delivery.posting import FollowUpPoster
from bot.reloading import KnowledgeReloader
from bot.settings import Settings
from bot.storage.database import Database
from bot.storage.records import Asker
from index import KnowledgeIndex


@dataclass
class Services:
    """What the handlers share: settings, the served index, the database."""

    settings: Settings
    index: KnowledgeIndex
    database: Database
    limiter: QuestionLimiter = field(init=False)
    inbox: Inbox = field(init=False)
    answerer: OffLoopAnswerer = field(init=False)

    reloader: KnowledgeReloader = field(init=False)
    # Posts follow-ups to the secretariat group (bot/delivery/posting.py); set by bot/app.py.
    poster: FollowUpPoster | None = None
    # Background tasks of this process (the knowledge watcher, the command menu's
    # registration), cancelled at shutdown.
    background: list[asyncio.Task] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.limiter = QuestionLimiter(self.settings.user_questions_per_minute)
        spool = self.settings.spool_path
        token = self.settings.telegram_bot_token
        bot_id = int(token.get_secret_value().split(":")[0]) if token else 0
        self.inbox = Inbox(self.database, spool.with_name(f"{spool.stem}.inbox{spool.suffix}"),
                           bot_id)
        self.answerer = OffLoopAnswerer()
        self.reloader = KnowledgeReloader(self)


@dataclass(frozen=True)
class _Job:
    question: str
    index: KnowledgeIndex
    rules: AnsweringRules
    done: asyncio.Future[Answer]


class OffLoopAnswerer:
    """Answers questions in worker threads, so that a slow question never blocks the event
    loop, and hands the answers back in batches.

    Questions that arrive while the workers are busy wait and are taken together, up to
    `batch` at a time: under a burst, one thread hand-over in each direction serves many
    questions (a hand-over per question cost a fifth of the bot's throughput,
    bench/telegram_throughput.py), and the batch is analyzed in one call, which Kiwi spreads
    over its own threads outside Python's interpreter lock. With two workers a slow question
    holds up at most its own batch.
    """

    # Kiwi and numpy release the GIL for part of their work; two threads match two cores.
    def __init__(self, workers: int = 2, batch: int = 16) -> None:
        self.workers = workers
        self.batch = batch
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="answer")
        self._lock = threading.Lock()
        self._waiting: deque[_Job] = deque()
        self._running = 0

    async def answer(self, question: str, index: KnowledgeIndex,
                     rules: AnsweringRules) -> Answer:
        loop = asyncio.get_running_loop()
        job = _Job(question, index, rules, loop.create_future())
        with self._lock:
            self._waiting.append(job)
            start = self._running < self.workers
            if start:
                self._running += 1
        if start:
            self._executor.submit(self._work, loop)
        return await job.done

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False)

    def _work(self, loop: asyncio.AbstractEventLoop) -> None:
        """In a worker thread: answer what is waiting, batch by batch, until nothing is."""
        while True:
            with self._lock:
                jobs = [self._waiting.popleft()
                        for _ in range(min(self.batch, len(self._waiting)))]
                if not jobs:
                    self._running -= 1
                    return
            try:
                loop.call_soon_threadsafe(_settle, _answer_jobs(jobs))
            except RuntimeError:
                return  # the loop closed while we worked: nobody is waiting any more


Outcome = tuple[asyncio.Future[Answer], Answer | BaseException]


def _answer_jobs(jobs: list[_Job]) -> list[Outcome]:
    """Answer a batch; one question that breaks the analysis fails alone."""
    outcomes: list[Outcome] = []
    # A reload may swap the index mid-burst: each batch goes to the index it was asked of.
    # Rules are compared by value: the settings build a new (equal) object for each question.
    by_index: dict[tuple[int, AnsweringRules], list[_Job]] = defaultdict(list)
    for job in jobs:
        by_index[id(job.index), job.rules].append(job)
    for group in by_index.values():
        index, rules = group[0].index, group[0].rules
        try:
            answers = answer_many([job.question for job in group], index, rules)
            outcomes.extend((job.done, a) for job, a in zip(group, answers, strict=True))
        except Exception:
            for job in group:
                try:
                    outcomes.append((job.done, answer(job.question, index, rules)))
                except Exception as exc:  # the handler's error path reports it
                    outcomes.append((job.done, exc))
    return outcomes


def _settle(outcomes: list[Outcome]) -> None:
    for done, outcome in outcomes:
        if done.cancelled():
            continue
        if isinstance(outcome, BaseException):
            done.set_exception(outcome)
        else:
            done.set_result(outcome)


@dataclass(frozen=True)
class Refusal:
    """A question over the user's limit: how long until they may ask again, and whether this
    is the first refusal of that wait (the only one the user is told of)."""

    seconds: int
    first: bool


class QuestionLimiter:
    """At most `per_minute` questions per user in any sliding minute."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._times: dict[int, deque[float]] = defaultdict(deque)
        # Until when a user has been told to slow down: a burst of twelve questions gets one
        # notice, not one per question over the limit.
        self._told_until: dict[int, float] = {}

    def refuse(self, user_id: int, now: float | None = None) -> Refusal | None:
        """None when the user may ask now (the question counts), else the refusal."""
        now = time.monotonic() if now is None else now
        times = self._times[user_id]
        while times and now - times[0] >= 60:
            times.popleft()
        if len(times) < self.per_minute:
            times.append(now)
            self._told_until.pop(user_id, None)
            return None
        free_at = times[0] + 60
        first = self._told_until.get(user_id, 0.0) <= now
        if first:
            self._told_until[user_id] = free_at
        return Refusal(max(1, int(free_at - now) + 1), first)


def services_of(context: ContextTypes.DEFAULT_TYPE) -> Services:
    return context.bot_data["services"]


def asker_of(user: User) -> Asker:
    """Who asks, as the records keep them."""
    return Asker(user.id, user.first_name or "", user.last_name, user.username,
                 user.language_code)


async def post_followup(application: Application, followup_id: int) -> None:
    """Have a new follow-up posted to the secretariat group: the poster (bot/delivery/posting.py)
    posts every follow-up the group does not have yet, retrying until it does."""
    services: Services = application.bot_data["services"]
    if services.poster is not None:
        services.poster.poke()



"""The inbox: every update is noted durably before Telegram can count it delivered, and marked
done once handled; after a crash the updates left unfinished are handled first, each at most
once, by whichever bot process is alive.

How it hooks into python-telegram-bot 22 (checked against its source):

- Polling: the Updater puts each fetched update on `application.update_queue` and confirms
  them to Telegram only with the next getUpdates offset, after every put has returned
  (telegram/ext/_updater.py, `polling_action_cb`). Webhook: the handler puts the update on
  the same queue and answers HTTP 200 only after the put returned
  (telegram/ext/_utils/webhookhandler.py). So `InboxQueue` gives "noted before confirmed"
  for both: for a webhook its `put` returns once the update is in the database (or the spool
  file while the database is away); when polling, `NotedBeforeConfirmed` holds each
  getUpdates request until the updates fetched before it are noted.
- `InboxProcessor`, the application's update processor, marks an update done when its
  handlers are through, and at stop hands back what has not started.
- `InboxRequest` marks an update "replying" just before the first message for it goes out,
  and "replied" as soon as Telegram has taken it. After a crash an update still "received" is
  handled again; one "replied" is not; one "replying" may or may not have reached the user
  (Telegram has no idempotent send), and is answered again with a note that the answer may be
  a repeat: a user who was never answered is worse off than one who reads a marked repeat.
  At most FIRST_SENDS_IN_FLIGHT first messages are between their send and the mark after
  it at once, so a kill repeats at most that many.
- Every mark is made only while this process owns the update: one that another process took
  over (it took this one for dead) is left to that process, before its first message goes out.

One module over 400 lines on purpose: the store and its hooks share the state of one promise.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import fcntl
import json
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection
from telegram import Update
from telegram._utils.defaultvalue import DEFAULT_NONE
from telegram._utils.types import ODVInput
from telegram.ext import Application, BaseUpdateProcessor
from telegram.request import BaseRequest, RequestData

from bot.storage.database import Database
from bot.storage.models import InboxState, utcnow
from bot.storage.persistence import (
    DatabasePersistence,
    concerns_conversation,
    conversation_key,
    conversation_steps,
    conversations,
)
from bot.storage.records import (
    InboxNote,
    forget_done_updates,
    inbox_owners,
    mark_going_out,
    mark_updates,
    note_updates,
    take_over_updates,
    unfinished_before,
)

log = logging.getLogger(__name__)

DATABASE_ERRORS = (SQLAlchemyError, OSError, TimeoutError)
# After a failed write, notes go straight to the spool for this long: a getUpdates batch of
# 100 must not wait for 100 timeouts.
DOWN_SECONDS = 5.0
# At stop, handlers under way get this long to finish (the rest of the 8 s a container runtime
# is asked to wait covers the last getUpdates, jobs and closing the database).
HAND_BACK_GRACE = 4.0
# Done updates are kept this long: Telegram redelivers an update for at most a day.
KEEP_DONE = dt.timedelta(days=2)
# The longest an update waits for another process to finish the same user's earlier one (a
# dead process's updates are taken over within INBOX_RECOVERY_SECONDS of bot/app.py).
WAIT_FOR_EARLIER_SECONDS = 5.0
# First replies whose fate a crash could leave unknown, at once: each from its send until the
# mark after it is written. 8 keep up with Telegram's 30 a second while a send and its commit
# take up to 250 ms (4 allow only 22 a second at 180 ms); unthrottled, 4 held the bot to
# 125-155 updates a second, 8 to 165-175 (bench/telegram_throughput.py).
FIRST_SENDS_IN_FLIGHT = 8
# How often a process makes sure it holds its lock, taking it again on a new connection when
# the one holding it was cut (PostgreSQL restarted, a proxy's idle timeout, an administrator).
LOCK_CHECK_SECONDS = 1.0
# On PostgreSQL a process counts as dead when its lock is seen free at two looks this far
# apart: a live process whose lock connection was cut holds its lock again within
# LOCK_CHECK_SECONDS, and taking its updates over would answer them twice.
TAKEOVER_GRACE = 3.0
# A message goes out only while the process's lock was seen held less than
# TAKEOVER_GRACE - LEASE_MARGIN ago (when other processes run): no other can have taken its
# update over then. The margin covers the request's way to Telegram.
LEASE_MARGIN = 1.0


@dataclass
class _Handling:
    """The update a handler task is working on (set by InboxProcessor)."""

    update_id: int
    recovered: bool
    # Its first message may have reached the user already: its process stopped while sending.
    repeat: bool = False
    # Where its first message is: being sent (or unknown after a network error), or sent.
    replying: bool = False
    replied: bool = False
    # Another process took it over (this one's lock looked free): it is left to that one.
    taken_over: bool = False
    # Its handler makes the sends that matter at most once by claims of their own
    # (bot/delivery/once.py), so it is handled again after a crash whatever its first
    # message's fate: a button press, a secretariat reply.
    resumable: bool = False
    # How often this process had taken its lock when its "replying" mark was written: the
    # mark found the update its own, and no other can take it over while the lock is held
    # without a break since (Liveness.acquisitions).
    epoch: int = 0


_HANDLING: ContextVar[_Handling | None] = ContextVar("inbox_handling", default=None)
# The claim of a send made once (bot/delivery/once.py) whose message is being sent: noted as
# going out just before its request does, so that a crash while it only waited for its turn
# (Telegram's rate, a group's limit) does not count as maybe sent.
_SENDING_ONCE: ContextVar[str | None] = ContextVar("inbox_sending_once", default=None)


@contextlib.contextmanager
def sending_once(key: str) -> Iterator[None]:
    """The message sent inside is the one the claim `key` names."""
    token = _SENDING_ONCE.set(key)
    try:
        yield
    finally:
        _SENDING_ONCE.reset(token)


def is_recovered(update: Update) -> bool:
    """Whether this update is handled again after its process stopped before its reply was
    through: its question may be stored already, and the user may have had no reply."""
    handling = _HANDLING.get()
    return handling is not None and handling.update_id == update.update_id and handling.recovered


def handle_again_after_crash(update: Update) -> None:
    """This update's handler keeps its own record of its sends (bot/delivery/once.py): after
    a crash it is handled again even if its first message went out, and carries on from
    where it stopped (a secretariat reply reached the asker; the group's confirmation not)."""
    handling = _HANDLING.get()
    if handling is not None and handling.update_id == update.update_id:
        handling.resumable = True


def may_repeat(update: Update) -> bool:
    """Whether the reply to this update may have reached the user already: its process
    stopped while sending it. The reply says so."""
    handling = _HANDLING.get()
    return handling is not None and handling.update_id == update.update_id and handling.repeat


class Inbox:
    """Notes updates and their progress in the `inbox` table, in one transaction for all that
    arrive together; while the database is away, in a spool file written to the database when
    it is back."""

    def __init__(self, database: Database, spool_path: Path, bot_id: int) -> None:
        self.database = database
        self.bot_id = bot_id
        self.spool_path = spool_path
        self.owner = uuid.uuid4().hex
        self.liveness = Liveness(database, bot_id)
        self._keeping: asyncio.Task[None] | None = None
        # Told how many processes of this bot are running (bot/app.py: the rate limiter,
        # which shares Telegram's limit among them).
        self.on_processes: Callable[[int], None] = lambda processes: None
        self._processes = 0
        self.recovered: set[int] = set()
        self.repeats: set[int] = set()  # recovered ones whose reply may have gone out
        self._notes: list[tuple[InboxNote, asyncio.Future[bool]]] = []
        self._marks: dict[int, InboxState] = {}
        self._mark_waiters: list[tuple[int, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._down_until = 0.0
        self._replaying = False
        self._spooled: set[int] = set()
        # Updates whose note failed, with what to do once noted (see InboxQueue).
        self._unnoted: list[tuple[Update, Callable[[asyncio.Future[bool]], None]]] = []
        self._forgot_at = 0.0

    # --- noting and marking -------------------------------------------------------------

    async def note(self, update: Update) -> bool:
        """Note an update durably; whether it is new (to be handled) rather than noted before."""
        # Shielded: a stopping Updater cancels its put, but the write must still finish or fail.
        return await asyncio.shield(self.note_soon(update))

    def note_soon(self, update: Update) -> asyncio.Future[bool]:
        """Start noting an update, together with the others that arrive meanwhile; the future
        says whether it is new. `flush_notes` waits for all of them."""
        user = update.effective_user
        note = InboxNote(self.bot_id, update.update_id, update.to_json(), self.owner, utcnow(),
                         user.id if user else None)
        noted: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._notes.append((note, noted))
        self._wake()
        return noted

    async def flush_notes(self) -> None:
        """Wait until every update started by `note_soon` is noted. A note that failed (no
        database and no disk) is tried again, every second, until it is: Telegram must never
        hear an update confirmed that is not noted."""
        while True:
            await self.flush()
            if not self._unnoted:
                return
            retry, self._unnoted = self._unnoted, []
            for update, then in retry:
                self.note_soon(update).add_done_callback(then)
            await asyncio.sleep(1)

    async def mark(self, update_id: int, state: InboxState) -> bool:
        """Note durably that an update is `replying`, back to `received` (its send failed
        for sure), `replied` or `done`; False when it could not be marked replying, being
        another process's now (one that took this one for dead)."""
        return await asyncio.shield(self.mark_soon(update_id, state))

    def mark_soon(self, update_id: int, state: InboxState) -> asyncio.Future[bool]:
        """Start marking an update, without waiting; the future is done once the mark (or a
        later one of the same update that came meanwhile, such as `done`) is written."""
        if self._marks.get(update_id) != InboxState.DONE:
            self._marks[update_id] = state
        written: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._mark_waiters.append((update_id, written))
        self._wake()
        return written

    async def flush(self) -> None:
        """Wait for every note and mark under way to be written."""
        while self._writer is not None and not self._writer.done():
            # Shielded: a waiter cancelled (the Updater stopping its polling) must not cancel
            # the write it waits for, which the next getUpdates, the cleanup's, waits for too.
            await asyncio.shield(self._writer)

    def _wake(self) -> None:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_waiting())

    async def _write_waiting(self) -> None:
        while self._notes or self._marks:
            notes, self._notes = self._notes, []
            marks, self._marks = self._marks, {}
            waiters, self._mark_waiters = self._mark_waiters, []
            try:
                new, refused = await self._write([note for note, _ in notes], marks)
            except Exception as exc:  # neither database nor disk: the update stays unconfirmed
                log.exception("inbox: %d update(s) could not be noted", len(notes))
                for future in [f for _, f in notes] + [f for _, f in waiters]:
                    future.set_exception(exc)
                continue
            for note, noted in notes:
                noted.set_result(note.update_id in new)
            for update_id, written in waiters:
                written.set_result(update_id not in refused)

    async def _write(self, notes: list[InboxNote], marks: dict[int, InboxState]
                     ) -> tuple[set[int], set[int]]:
        """Write to the database, or to the spool while the database is away or the spool
        still holds lines (marks must follow the notes they mark); the ids noted now, and
        those not marked replying, being another process's now (in the spool: none, there
        being no other process to ask)."""
        if time.monotonic() >= self._down_until and not self._spool_pending():
            try:
                async with self.database.session() as session:
                    new = await note_updates(session, notes)
                    refused = await mark_updates(session, self.bot_id, marks, self.owner)
                    await session.commit()
                return new, refused
            except DATABASE_ERRORS as exc:
                log.warning("inbox: database unavailable (%s); noting in %s",
                            type(exc).__name__, self.spool_path)
                self._down_until = time.monotonic() + DOWN_SECONDS
        self._spool(notes, marks)
        # Without the database to ask, this process at least never handles one twice itself.
        new = {note.update_id for note in notes} - self._spooled
        self._spooled |= new
        return new, set()

    def _spool_pending(self) -> bool:
        return (self._replaying or self.spool_path.exists()
                or self.spool_path.with_suffix(".replaying").exists())

    def _spool(self, notes: list[InboxNote], marks: dict[int, InboxState]) -> None:
        # One write call with no await in between: a replay renaming the file never sees half.
        lines = [json.dumps({"note": {"bot_id": n.bot_id, "update_id": n.update_id,
                                      "payload": n.payload,
                                      "owner": n.owner,
                                      "received_at": n.received_at.isoformat(),
                                      "user_id": n.user_id}},
                            ensure_ascii=False) for n in notes]
        lines += [json.dumps({"mark": [self.bot_id, update_id, state]})
                  for update_id, state in marks.items()]
        self.spool_path.parent.mkdir(parents=True, exist_ok=True)
        with self.spool_path.open("a", encoding="utf-8") as spool:
            spool.write("".join(line + "\n" for line in lines))

    async def still_owns(self, update_id: int, epoch: int) -> bool:
        """Just before a message for the update goes out: whether this process still owns
        it for certain. When other processes run and the lock was not seen held lately (the
        database is out of reach, the event loop stalled), or was lost and taken again since
        the update was marked `replying` in `epoch`, the send waits until the lock is held
        and the inbox row says it is still this process's; False: another took it over
        meanwhile, and answers it."""
        liveness = self.liveness
        if self._processes <= 1 or (liveness.lease_left() > 0
                                    and epoch == liveness.acquisitions):
            return True
        if update_id in self._spooled and self._spool_pending():
            return True  # noted in this process's spool alone: no other can take it over
        log.warning("inbox: lock of this process not seen held for %.1f s; update %d waits "
                    "until it is", TAKEOVER_GRACE - LEASE_MARGIN - self.liveness.lease_left(),
                    update_id)
        while True:
            try:
                if not self._spool_pending():  # its notes and marks must be written first
                    await self.liveness.hold(self.owner)
                    async with self.database.session() as session:
                        refused = await mark_updates(session, self.bot_id,
                                                     {update_id: "replying"}, self.owner)
                        await session.commit()
                    return update_id not in refused
            except DATABASE_ERRORS as exc:
                log.debug("inbox: ownership of update %d not confirmed (%s)", update_id,
                          type(exc).__name__)
            await asyncio.sleep(LOCK_CHECK_SECONDS / 2)

    async def wait_for_earlier(self, update: Update) -> None:
        """Wait (up to a few seconds) while another process is still handling an earlier
        update of the same user: the next step of a /check must find the state the previous
        step left, and a user may press the next button before that process wrote it."""
        user = update.effective_user
        if user is None:
            return
        deadline = time.monotonic() + WAIT_FOR_EARLIER_SECONDS
        while time.monotonic() < deadline:
            try:
                async with self.database.session() as session:
                    if not await unfinished_before(session, self.bot_id, user.id,
                                                   update.update_id, self.owner):
                        return
            except DATABASE_ERRORS:
                return
            await asyncio.sleep(0.05)

    # --- after a crash ------------------------------------------------------------------

    async def start(self) -> None:
        await self.liveness.hold(self.owner)
        log.info("inbox: this process is %s", self.owner)
        await self._count_processes()
        self._keeping = asyncio.get_running_loop().create_task(self._keep_lock(),
                                                               name="inbox-lock")

    async def _keep_lock(self) -> None:
        """Every LOCK_CHECK_SECONDS: hold the lock (again), and count the running processes."""
        while True:
            await asyncio.sleep(LOCK_CHECK_SECONDS)
            try:
                await self.liveness.hold(self.owner)
                await self._count_processes()
            except DATABASE_ERRORS as exc:
                log.debug("inbox: lock not checked (%s)", type(exc).__name__)

    async def _count_processes(self) -> None:
        processes = await self.liveness.processes()
        if processes != self._processes:
            self._processes = processes
            self.on_processes(processes)

    async def close(self) -> None:
        if self._keeping is not None:
            self._keeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeping
        await self.flush()
        await self.liveness.release()

    async def recover(self, patient: bool = False) -> list[str]:
        """Write the spool to the database, take over the updates of processes that died, and
        return those to handle again (JSON, oldest first). Those a dead process had replied to
        are marked done; those it was replying to are handled again, their reply marked as a
        possible repeat. `patient` (at start): wait, if need be, until processes whose lock
        was just seen free count as dead, so that their updates too are handled first."""
        again = await self._take_over()
        if patient and (wait := self.liveness.takeover_wait()) > 0:
            await asyncio.sleep(wait)
            again += await self._take_over()
        return again

    async def _take_over(self) -> list[str]:
        try:
            await self._replay_spool()
            await self.liveness.hold(self.owner)
            async with self.database.session() as session:
                owners = await inbox_owners(session, self.bot_id, self.owner)
            self.liveness.only(owners)
            taken = []
            for owner in owners:
                if not await self.liveness.is_dead(owner):
                    continue
                async with self.database.session() as session:
                    taken += await take_over_updates(session, self.bot_id, owner, self.owner)
                await self.liveness.forget(owner)
            await self._forget_old()
        except DATABASE_ERRORS as exc:
            log.warning("inbox: recovery postponed (%s)", type(exc).__name__)
            return []
        again = []
        for row in sorted(taken, key=lambda row: row.update_id):
            if row.state == InboxState.REPLIED:
                await self.mark(row.update_id, InboxState.DONE)
                continue
            if row.state == InboxState.REPLYING:
                log.warning("inbox: update %d was being replied to when its process stopped; "
                            "answered again, marked as a possible repeat", row.update_id)
                self.repeats.add(row.update_id)
            again.append(row.payload)
            self.recovered.add(row.update_id)
        if again:
            log.info("inbox: handling %d update(s) left unfinished by a stopped process",
                     len(again))
        return again

    async def _replay_spool(self) -> None:
        """Write the spooled notes and marks to the database, skipping (and logging) any line
        that cannot be read, so one bad line never blocks the rest."""
        taking = self.spool_path.with_suffix(".replaying")
        if time.monotonic() < self._down_until or not (self.spool_path.exists()
                                                       or taking.exists()):
            return
        self._replaying = True
        try:
            if not taking.exists():
                self.spool_path.replace(taking)
            notes, marks = _read_spool(taking)
            async with self.database.session() as session:
                for bot_id in {note.bot_id for note in notes} | set(marks):
                    await note_updates(session, [n for n in notes if n.bot_id == bot_id])
                    await mark_updates(session, bot_id, marks.get(bot_id, {}))
                await session.commit()
            taking.unlink()
            log.info("inbox: %d spooled update(s) written to the database", len(notes))
        finally:
            self._replaying = False

    async def _forget_old(self) -> None:
        """Once an hour: drop old done updates and dead processes' lock files."""
        if time.monotonic() - self._forgot_at < 3600:
            return
        async with self.database.session() as session:
            await forget_done_updates(session, utcnow() - KEEP_DONE)
        await self.liveness.sweep()
        self._forgot_at = time.monotonic()


def _read_spool(path: Path) -> tuple[list[InboxNote], dict[int, dict[int, InboxState]]]:
    """The notes, and the last mark of each update by bot id, in a spool file."""
    notes: dict[tuple[int, int], InboxNote] = {}
    marks: dict[int, dict[int, InboxState]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            if "note" in entry:
                n = entry["note"]
                notes[int(n["bot_id"]), int(n["update_id"])] = InboxNote(
                    int(n["bot_id"]), int(n["update_id"]), str(n["payload"]), str(n["owner"]),
                    dt.datetime.fromisoformat(n["received_at"]),
                    int(n["user_id"]) if n.get("user_id") is not None else None)
            else:
                bot_id, update_id, state = entry["mark"]
                of_bot = marks.setdefault(int(bot_id), {})
                if state in set(InboxState) and of_bot.get(int(update_id)) != InboxState.DONE:
                    of_bot[int(update_id)] = InboxState(state)
        except (ValueError, KeyError, TypeError, IndexError):
            log.error("inbox spool %s:%d: unreadable line skipped", path, number)
    return list(notes.values()), marks


class Liveness:
    """Whether the process that owns inbox updates still lives: each holds a lock that the
    kernel (SQLite: a lock file beside the database) or PostgreSQL (an advisory lock on its
    own connection) releases the moment the process dies, SIGKILL included. On PostgreSQL the
    lock also goes with its connection alone, so a free lock counts only when it is still free
    TAKEOVER_GRACE later."""

    def __init__(self, database: Database, bot_id: int) -> None:
        self.database = database
        self.bot_id = bot_id
        self.postgres = not database.url.startswith("sqlite")
        path = database.url.split(":///", 1)[-1]
        self._folder = None if self.postgres or path in ("", ":memory:") else Path(path).parent
        self._stem = Path(path).name
        self._held: Any = None  # the lock file or the connection holding the lock
        # When the lock was last seen held (monotonic): a lock file's lock ends only with its
        # process; PostgreSQL's also with its connection.
        self.confirmed_at = -math.inf if self.postgres else math.inf
        self.acquisitions = 0  # how often the lock was taken (again, after a cut connection)
        self._lost = False
        self._free_since: dict[str, float] = {}  # owner -> when its lock was first seen free
        self._holding = asyncio.Lock()

    def lease_left(self) -> float:
        """Seconds for which no other process can take this one's updates over yet: they
        do so only once its lock has been free for TAKEOVER_GRACE (less a margin)."""
        return self.confirmed_at + TAKEOVER_GRACE - LEASE_MARGIN - time.monotonic()

    def _lock_file(self, owner: str) -> Path:
        assert self._folder is not None
        return self._folder / f"{self._stem}.inbox-{owner}.alive"

    async def hold(self, owner: str) -> None:
        """Hold this process's lock (again, if the database connection holding it was lost)."""
        async with self._holding:  # two connections taking it at once would wait on each other
            await self._hold(owner)

    async def _hold(self, owner: str) -> None:
        if self.postgres:
            asked_at = time.monotonic()  # the lock was held when the server answered, later
            if self._held is not None:
                try:
                    await self._held.execute(text("SELECT 1"))
                    await self._held.commit()
                    self.confirmed_at = asked_at
                    return
                except DATABASE_ERRORS:
                    with contextlib.suppress(Exception):
                        await self._held.close()
                    self._held = None
                    self._lost = True  # said when held again, however many tries it takes
            connection: AsyncConnection = await self.database.engine.connect()
            await connection.execute(text("SELECT pg_advisory_lock(:key)"),
                                     {"key": lock_key(owner)})
            # Shared by the bot's processes: how many hold it is how many are running.
            await connection.execute(text("SELECT pg_advisory_lock_shared(:space, :bot)"),
                                     {"space": PROCESSES_LOCK_SPACE, "bot": self._bot_key})
            await connection.commit()  # the locks are the session's; no transaction stays open
            self._held = connection
            self.confirmed_at = asked_at
            self.acquisitions += 1
            if self._lost:
                self._lost = False
                log.warning("inbox: the database connection holding this process's lock was "
                            "lost; lock held again")
        elif self._folder is not None and self._held is None:
            self._folder.mkdir(parents=True, exist_ok=True)
            lock = self._lock_file(owner).open("w")
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            lock.write(str(self.bot_id))  # whose process it is, for counting them
            lock.flush()
            self._held = lock

    async def processes(self) -> int:
        """How many processes of this bot are running (this one included): the holders of
        the bot's shared lock on PostgreSQL, the held lock files beside an SQLite database."""
        if self.postgres:
            async with self.database.engine.connect() as connection:
                count = (await connection.execute(text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND database = (SELECT oid FROM pg_database "
                    "WHERE datname = current_database()) "
                    "AND classid = :space AND objid = :bot AND objsubid = 2"),
                    {"space": PROCESSES_LOCK_SPACE, "bot": self._bot_key})).scalar_one()
            return max(1, int(count))
        if self._folder is None or not self._folder.exists():
            return 1
        count = 1
        own = Path(self._held.name) if self._held is not None else None
        for path in self._folder.glob(f"{self._stem}.inbox-*.alive"):
            with contextlib.suppress(OSError):
                if path == own or path.read_text() not in ("", str(self.bot_id)):
                    continue
                owner = path.name.removeprefix(f"{self._stem}.inbox-").removesuffix(".alive")
                count += not await self._lock_free(owner)
        return count

    @property
    def _bot_key(self) -> int:
        return self.bot_id % 2**31

    async def is_dead(self, owner: str) -> bool:
        """Whether a process is gone: its lock is free (on PostgreSQL, at two looks at least
        TAKEOVER_GRACE apart)."""
        if not await self._lock_free(owner):
            self._free_since.pop(owner, None)
            return False
        if not self.postgres:
            return True  # a lock file's lock ends with its process, and only then
        now = time.monotonic()
        first = self._free_since.setdefault(owner, now)
        if now - first < TAKEOVER_GRACE:
            if first == now:
                log.info("inbox: the lock of process %s is free; its updates are taken over "
                         "if it is still free in %.0f s", owner, TAKEOVER_GRACE)
            return False
        del self._free_since[owner]
        return True

    def takeover_wait(self) -> float:
        """Seconds until the processes whose lock was seen free may count as dead (0: none)."""
        if not self._free_since:
            return 0.0
        return max(0.0, max(self._free_since.values()) + TAKEOVER_GRACE - time.monotonic())

    def only(self, owners: list[str]) -> None:
        """Forget what was seen of processes that no longer own unfinished updates."""
        for owner in set(self._free_since) - set(owners):
            del self._free_since[owner]

    async def _lock_free(self, owner: str) -> bool:
        if self.postgres:
            async with self.database.engine.connect() as connection:
                free = (await connection.execute(text("SELECT pg_try_advisory_lock(:key)"),
                                                 {"key": lock_key(owner)})).scalar_one()
                if free:
                    await connection.execute(text("SELECT pg_advisory_unlock(:key)"),
                                             {"key": lock_key(owner)})
                await connection.commit()
                return bool(free)
        if self._folder is None:
            return True  # an in-memory database has one process
        path = self._lock_file(owner)
        if not path.exists():
            return True
        with path.open("a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            fcntl.flock(lock, fcntl.LOCK_UN)
            return True

    async def forget(self, owner: str) -> None:
        if self._folder is not None:
            self._lock_file(owner).unlink(missing_ok=True)

    async def sweep(self) -> None:
        """Remove the lock files of dead processes that left nothing to take over."""
        if self._folder is None or not self._folder.exists():
            return
        own = Path(self._held.name) if self._held is not None else None
        for path in self._folder.glob(f"{self._stem}.inbox-*.alive"):
            if path != own:
                owner = path.name.removeprefix(f"{self._stem}.inbox-").removesuffix(".alive")
                if await self.is_dead(owner):
                    path.unlink(missing_ok=True)

    async def release(self) -> None:
        held, self._held = self._held, None
        if held is None:
            return
        if self.postgres:
            with contextlib.suppress(*DATABASE_ERRORS):
                await held.close()
        else:
            Path(held.name).unlink(missing_ok=True)
            held.close()


def lock_key(owner: str) -> int:
    """The advisory lock key of an owner (60 bits of its random hex id)."""
    return int(owner[:15], 16)


# The first key of the shared lock each process of a bot holds (two 32-bit keys, a space
# apart from the owners' 64-bit keys); the second is the bot's id.
PROCESSES_LOCK_SPACE = 0x6D6178  # "max"


class InboxQueue(asyncio.Queue):
    """The application's update queue: an update reaches the handlers once it is noted, and
    not at all if it was noted before. Updates taken over after a crash come in by
    `put_nowait`, being noted already.

    Webhook: `put` returns once the update is noted, and the HTTP 200 follows it. Polling:
    `put` only starts the note, so that a getUpdates batch is noted in one transaction (one
    each cost 40% of the bot's throughput), and `NotedBeforeConfirmed` waits for the notes
    before the next getUpdates confirms the batch.
    """

    def __init__(self, inbox: Inbox) -> None:
        super().__init__()
        self.inbox = inbox
        self.polling = False  # set by NotedBeforeConfirmed when the first getUpdates goes out
        self._stopping = False

    async def put(self, item: Any) -> None:
        if not isinstance(item, Update):
            self._stopping = True  # the application's stop signal: nothing after it is taken
            await super().put(item)
        elif self.polling:
            self.inbox.note_soon(item).add_done_callback(self._then_handle(item))
        elif await self.inbox.note(item):
            await super().put(item)
        else:
            log.debug("update %d noted before; not handled again", item.update_id)

    def _then_handle(self, update: Update) -> Callable[[asyncio.Future[bool]], None]:
        def noted(future: asyncio.Future[bool]) -> None:
            if future.exception() is not None:
                self.inbox._unnoted.append((update, noted))
            elif future.result() and not self._stopping:
                # Stopping: it stays unfinished in the inbox for the next start.
                self.put_nowait(update)
        return noted


class DelegatingRequest(BaseRequest):
    """A request object that hands every call on to another: the base of the inbox's two,
    which each add one thing to `do_request`."""

    def __init__(self, inner: BaseRequest) -> None:
        self._inner = inner

    @property
    def read_timeout(self) -> float | None:
        return self._inner.read_timeout

    async def initialize(self) -> None:
        await self._inner.initialize()

    async def shutdown(self) -> None:
        await self._inner.shutdown()

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         read_timeout: ODVInput[float] = DEFAULT_NONE,
                         write_timeout: ODVInput[float] = DEFAULT_NONE,
                         connect_timeout: ODVInput[float] = DEFAULT_NONE,
                         pool_timeout: ODVInput[float] = DEFAULT_NONE) -> tuple[int, bytes]:
        return await self._inner.do_request(url, method, request_data, read_timeout,
                                            write_timeout, connect_timeout, pool_timeout)


class NotedBeforeConfirmed(DelegatingRequest):
    """The getUpdates requests: each waits until the updates fetched before are noted, as it
    confirms them to Telegram (its offset)."""

    def __init__(self, inner: BaseRequest, queue: InboxQueue) -> None:
        super().__init__(inner)
        self._queue = queue

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         read_timeout: ODVInput[float] = DEFAULT_NONE,
                         write_timeout: ODVInput[float] = DEFAULT_NONE,
                         connect_timeout: ODVInput[float] = DEFAULT_NONE,
                         pool_timeout: ODVInput[float] = DEFAULT_NONE) -> tuple[int, bytes]:
        if url.rsplit("/", 1)[-1] == "getUpdates":
            self._queue.polling = True
            await self._queue.inbox.flush_notes()
        return await super().do_request(url, method, request_data, read_timeout,
                                        write_timeout, connect_timeout, pool_timeout)


class InboxProcessor(BaseUpdateProcessor):
    """Runs up to `max_concurrent_updates` updates at once, marks each done when its handlers
    are through, and at stop hands back the updates not started: they stay unfinished in the
    inbox for the next start (of this or another process)."""

    def __init__(self, inbox: Inbox, max_concurrent_updates: int) -> None:
        super().__init__(max_concurrent_updates)
        self.inbox = inbox
        # Set by build_application: shares conversation states with other processes.
        self.application: Application | None = None
        self._running: set[asyncio.Task[Any]] = set()
        self._handing_back = False
        # user id -> (the lock their conversation updates take in turn, how many updates hold
        # it or wait for it)
        self._turns: dict[int, tuple[asyncio.Lock, int]] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        if not isinstance(update, Update):
            await coroutine
            return
        if self._handing_back:
            _close(coroutine)
            log.debug("update %d handed back to the inbox", update.update_id)
            return
        handling = _Handling(update.update_id, update.update_id in self.inbox.recovered,
                             repeat=update.update_id in self.inbox.repeats,
                             resumable=update.callback_query is not None)
        token = _HANDLING.set(handling)
        task = asyncio.current_task()
        assert task is not None
        self._running.add(task)
        try:
            application = self.application
            persistence = application.persistence if application is not None else None
            shared = (isinstance(persistence, DatabasePersistence)
                      and concerns_conversation(application, update))
            if shared:
                async with self._in_turn(update):
                    await self.inbox.wait_for_earlier(update)
                    await persistence.load_current(application, update)
                    await coroutine
                    # Written before the update counts as done, so that the next step of a
                    # running /check finds its state whichever process it reaches.
                    await application.update_persistence()
            elif application is not None and self._continues_a_conversation(application,
                                                                           update):
                async with self._in_turn(update):
                    await coroutine
            else:
                await coroutine
        except asyncio.CancelledError:
            if handling.taken_over:
                log.warning("update %d was taken over by another process (this one's lock "
                            "looked free to it); left to that process", update.update_id)
                return
            if not self._handing_back:
                raise
            log.info("update %d handed back to the inbox at stop%s", update.update_id,
                     " (its reply was being sent)" if handling.replying else "")
            return
        finally:
            self._running.discard(task)
            _HANDLING.reset(token)
        self.inbox.recovered.discard(update.update_id)
        self.inbox.repeats.discard(update.update_id)
        await self.inbox.mark(update.update_id, InboxState.DONE)

    def _continues_a_conversation(self, application: Application, update: Update) -> bool:
        """Whether a conversation that is not shared between processes (an upload's
        questions) may take this update as its start, or as its next step for a user who is in
        it or whose previous update of it is still running. A question of a user in none is
        not held up."""
        user = update.effective_user
        if user is None:
            return False
        busy = user.id in self._turns
        chat = update.effective_chat
        for handler in conversations(application):
            if handler.persistent:
                continue
            if any(step.check_update(update) for step in handler.entry_points):
                return True
            key = conversation_key(handler, chat.id if chat else None, user.id)
            # PTB offers no public view of who is in a conversation.
            if ((busy or key in handler._conversations)
                    and any(step.check_update(update) for step in conversation_steps(handler))):
                return True
        return False

    @contextlib.asynccontextmanager
    async def _in_turn(self, update: Update) -> AsyncIterator[None]:
        """One conversation update of a user at a time, in the order they came: a button
        pressed or an answer typed while the previous step is still being sent must find the
        state that step leaves (updates run concurrently, and PTB sets a conversation's state
        only when its handler returns)."""
        user = update.effective_user
        if user is None:
            yield
            return
        lock, updates = self._turns.get(user.id, (asyncio.Lock(), 0))
        self._turns[user.id] = (lock, updates + 1)
        try:
            async with lock:
                yield
        finally:
            lock, updates = self._turns[user.id]
            if updates == 1:
                del self._turns[user.id]
            else:
                self._turns[user.id] = (lock, updates - 1)

    def hand_back(self, grace: float = HAND_BACK_GRACE) -> None:
        """Start no more updates; cancel those still running after `grace` seconds."""
        self._handing_back = True
        asyncio.get_running_loop().call_later(grace, self._cancel_running)

    def _cancel_running(self) -> None:
        for task in list(self._running):
            task.cancel()

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None


def _close(coroutine: Awaitable[Any]) -> None:
    close = getattr(coroutine, "close", None)
    if close is not None:
        close()  # never started: no "was never awaited" warning


class InboxApplication(Application):
    """The Application whose stop hands back the work not done within the grace period
    instead of handling every fetched update first (which took 45 s after a burst, past the
    10 s a container runtime waits after SIGTERM)."""

    async def stop(self) -> None:
        if isinstance(self.update_processor, InboxProcessor):
            self.update_processor.hand_back()
        await super().stop()


class InboxRequest(DelegatingRequest):
    """The bot's requests: the first message for an update is marked "replying" in the inbox
    before it goes out and "replied" once Telegram has it, so that after a crash the inbox
    knows which users have their reply, which have not, and which may have."""

    def __init__(self, inner: BaseRequest, inbox: Inbox) -> None:
        super().__init__(inner)
        self._inbox = inbox
        self._first_sends = asyncio.Semaphore(FIRST_SENDS_IN_FLIGHT)

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         read_timeout: ODVInput[float] = DEFAULT_NONE,
                         write_timeout: ODVInput[float] = DEFAULT_NONE,
                         connect_timeout: ODVInput[float] = DEFAULT_NONE,
                         pool_timeout: ODVInput[float] = DEFAULT_NONE) -> tuple[int, bytes]:
        handling = _HANDLING.get()
        if handling is not None and handling.recovered and _answers_a_press(url):
            return await self._answer_press_again(url, method, request_data, read_timeout,
                                                  write_timeout, connect_timeout, pool_timeout)
        if handling is None or handling.replied or not _sends_a_message(url):
            return await super().do_request(url, method, request_data, read_timeout,
                                            write_timeout, connect_timeout, pool_timeout)
        if handling.resumable:
            # Its sends keep their own claims; the inbox only makes sure it is still this
            # process's, and leaves it "replying" so that a crash has it handled again.
            if not handling.replying:
                handling.epoch = self._inbox.liveness.acquisitions
                if not await self._inbox.mark(handling.update_id, "replying"):
                    handling.taken_over = True
                    raise asyncio.CancelledError(f"update {handling.update_id} is another "
                                                 "process's now")
            handling.replying = True
            if not await self._inbox.still_owns(handling.update_id, handling.epoch):
                handling.taken_over = True
                raise asyncio.CancelledError(f"update {handling.update_id} is another "
                                             "process's now")
            if (key := _SENDING_ONCE.get()) is not None and request_data is not None:
                chat_id = request_data.parameters.get("chat_id")
                async with self._inbox.database.session() as session:
                    await mark_going_out(session, key, int(chat_id) if chat_id else 0)
            return await super().do_request(url, method, request_data, read_timeout,
                                            write_timeout, connect_timeout, pool_timeout)
        # Once marked, a crash has the reply sent again after the restart, marked as a
        # possible repeat: the user may have it if Telegram had it before the next mark.
        handling.epoch = self._inbox.liveness.acquisitions
        if not await self._inbox.mark(handling.update_id, InboxState.REPLYING):
            handling.taken_over = True
            raise asyncio.CancelledError(f"update {handling.update_id} is another process's "
                                         "now")
        # An earlier attempt that ended in a network error, or an earlier process's.
        unknown_before = handling.replying or handling.repeat
        handling.replying = True
        # Few such sends at a time keep such repeats few: a slot is held from the send until
        # the mark after it is written. After a 429 the rate limiter releases every request
        # it held back at once (33 in flight, 20 replies unknown at one SIGKILL).
        await self._first_sends.acquire()
        try:
            if not await self._inbox.still_owns(handling.update_id, handling.epoch):
                handling.taken_over = True
                raise asyncio.CancelledError(f"update {handling.update_id} is another "
                                             "process's now")
            code, body = await super().do_request(url, method, request_data, read_timeout,
                                                  write_timeout, connect_timeout, pool_timeout)
        except BaseException:
            self._first_sends.release()  # unknown whether it was sent: left "replying"
            raise
        if 200 <= code < 300:
            handling.replied = True
            # The handler goes on meanwhile, and its `done`, if it comes before the write,
            # is written instead: one commit where there were two.
            self._inbox.mark_soon(handling.update_id, InboxState.REPLIED).add_done_callback(
                self._release_slot)
            return code, body
        try:
            if not unknown_before:  # refused (a 429, say): nothing reached the user
                await self._inbox.mark(handling.update_id, InboxState.RECEIVED)
                handling.replying = False
        finally:
            self._first_sends.release()
        return code, body

    async def _answer_press_again(self, url: str, method: str,
                                  request_data: RequestData | None, *timeouts: Any
                                  ) -> tuple[int, bytes]:
        """A button press handled again after a crash: Telegram refuses a second answer to
        it (or one past its time), and the handler must go on to what it still owes."""
        code, body = await super().do_request(url, method, request_data, *timeouts)
        if code == 400:
            log.info("a press handled again after a restart was answered before, or too late")
            return 200, b'{"ok":true,"result":true}'
        return code, body

    def _release_slot(self, written: asyncio.Future[bool]) -> None:
        if not written.cancelled():
            written.exception()  # logged by the inbox's writer already
        self._first_sends.release()


def _answers_a_press(url: str) -> bool:
    return url.rsplit("/", 1)[-1].lower() == "answercallbackquery"


def _sends_a_message(url: str) -> bool:
    """Whether a Bot API call puts a message in a chat (sendMessage, sendPhoto, copyMessage,
    …): what a user sees as a reply. Answering a button press or showing "typing…" is not."""
    name = url.rsplit("/", 1)[-1].lower()
    return ((name.startswith("send") and name != "sendchataction")
            or name.startswith(("copymessage", "forwardmessage")))

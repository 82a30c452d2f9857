"""The database connection: engine, sessions, schema migrations, and the spool.

When the database cannot be reached, a question is appended to a local spool file instead and
written later, so that no question is ever lost and the user still gets a reply.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event, text
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    InternalError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.storage.records import QuestionRecord, Recorded, record_questions

log = logging.getLogger(__name__)
T = TypeVar("T")

# How long a write may take before the database counts as unavailable for this question.
WRITE_TIMEOUT_S = 5.0
# The most questions written in one transaction.
WRITE_BATCH = 100


class Database:
    """The async engine, sessions, and the spool for when the database is away."""

    def __init__(self, url: str, spool_path: Path, write_timeout: float = WRITE_TIMEOUT_S) -> None:
        self.url = url
        self.spool_path = spool_path
        self.write_timeout = write_timeout
        self.engine = _create_engine(url, write_timeout)
        self._spool_lock = asyncio.Lock()
        self._replay_lock = asyncio.Lock()
        self._waiting: list[tuple[QuestionRecord, asyncio.Future[Recorded]]] = []
        self._writer: asyncio.Task[None] | None = None
        # Called with the number of questions a spool replay wrote (their follow-ups need
        # posting): bot/app.py wakes the follow-up poster.
        self.on_replayed: Callable[[int], None] | None = None

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with AsyncSession(self.engine, expire_on_commit=False) as session:
            yield session

    async def close(self) -> None:
        if self._writer is not None:
            await self._writer  # the questions waiting to be written are written first
        await self.engine.dispose()

    async def save_question(self, record: QuestionRecord) -> Recorded:
        """Write the question, or spool it when the database cannot take it now.

        Questions that arrive while a write is under way wait for it and are then written
        together in one transaction (a group commit): at one question at a time nothing
        waits, and under a burst the database is not the bottleneck.
        """
        loop = asyncio.get_running_loop()
        written: asyncio.Future[Recorded] = loop.create_future()
        self._waiting.append((record, written))
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write_waiting())
        # Shielded: an asker's handler being cancelled must not drop the question.
        return await asyncio.shield(written)

    async def _write_waiting(self) -> None:
        reachable = False
        while self._waiting:
            batch = self._waiting[:WRITE_BATCH]
            del self._waiting[:WRITE_BATCH]
            reachable = await self._write_batch(batch)
        if reachable and self.spool_path.exists():
            asyncio.get_running_loop().create_task(self.replay_spool())

    async def _write_batch(self, batch: list[tuple[QuestionRecord, asyncio.Future[Recorded]]]
                           ) -> bool:
        """Write a batch and tell each waiting handler what became of its question; whether
        the database took it."""
        reachable = True
        records = [record for record, _ in batch]
        try:
            # The drivers time out (busy wait, command and pool timeouts): cancelling a write
            # from outside would leave its connection half closed.
            async with self.session() as session:
                outcomes: list[Recorded | BaseException] = list(
                    await record_questions(session, records))
        except Exception as exc:
            if is_outage(exc):
                log.warning("database unavailable (%s); %d question(s) spooled",
                            type(exc).__name__, len(records))
                await self._spool(records)
                outcomes = [Recorded(None, None, spooled=True)] * len(records)
                reachable = False
            elif isinstance(exc, SQLAlchemyError) and len(batch) > 1:
                # The database refuses one record (a constraint, a value it cannot take):
                # write the others one by one, so that only that record's asker hears of it.
                for one in batch:
                    await self._write_batch([one])
                return True
            else:  # a bug, not an outage: each handler reports it, none hangs
                outcomes = [exc] * len(records)
        for (_, written), outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                written.set_exception(outcome)
            else:
                written.set_result(outcome)
        return reachable

    async def _spool(self, records: list[QuestionRecord]) -> None:
        async with self._spool_lock:
            self.spool_path.parent.mkdir(parents=True, exist_ok=True)
            with self.spool_path.open("a", encoding="utf-8") as spool:
                spool.writelines(record.to_json() + "\n" for record in records)

    async def spooled(self) -> list[QuestionRecord]:
        async with self._spool_lock:
            if not self.spool_path.exists():
                return []
            lines = self.spool_path.read_text(encoding="utf-8").splitlines()
        return [QuestionRecord.from_json(line) for line in lines if line.strip()]

    async def replay_spool(self) -> int:
        """Write spooled questions to the database; returns how many were written."""
        if self._replay_lock.locked():
            return 0  # one replay at a time; the running one or the next picks new lines up
        async with self._replay_lock:
            return await self._replay()

    async def _replay(self) -> int:
        async with self._spool_lock:
            if not self.spool_path.exists():
                return 0
            taking = self.spool_path.with_suffix(".replaying")
            self.spool_path.replace(taking)
        # Read as bytes and decoded per line: a torn or foreign line is one bad line, not an
        # unreadable file.
        numbered = [(n, line) for n, line in enumerate(
            taking.read_bytes().decode("utf-8", "surrogateescape").splitlines(), 1)
            if line.strip()]
        done = 0  # lines written or set aside, from the start
        written = 0
        try:
            for start in range(0, len(numbered), WRITE_BATCH):
                chunk = numbered[start:start + WRITE_BATCH]
                written += await self._replay_chunk(chunk)
                done += len(chunk)
        except OUTAGE as exc:
            log.warning("spool replay stopped after %d of %d (%s)", done, len(numbered),
                        type(exc).__name__)
        async with self._spool_lock:
            rest = [line for _, line in numbered[done:]]
            if rest:
                with self.spool_path.open("a", encoding="utf-8", errors="surrogateescape") as f:
                    f.write("\n".join(rest) + "\n")
            taking.unlink()
        if written:
            log.info("replayed %d spooled question(s)", written)
            if self.on_replayed is not None:
                self.on_replayed(written)
        return written

    async def _replay_chunk(self, chunk: list[tuple[int, str]]) -> int:
        """Write one chunk of spool lines; a line that cannot be read or stored is set aside
        in the rejected file and reported, and the others are written. Raises OUTAGE errors
        (the database is away: the chunk stays in the spool)."""
        records: list[tuple[int, str, QuestionRecord]] = []
        for number, line in chunk:
            try:
                records.append((number, line, QuestionRecord.from_json(line)))
            except (ValueError, TypeError, KeyError) as exc:
                await self._set_aside(number, line, exc)
        if not records:
            return 0
        try:
            async with self.session() as session:
                await record_questions(session, [record for _, _, record in records])
            return len(records)
        except OUTAGE:
            raise
        except (SQLAlchemyError, ValueError, TypeError) as exc:
            if len(records) == 1:
                await self._check_reachable()  # an outage the driver reports oddly stops here
                number, line, _ = records[0]
                await self._set_aside(number, line, exc)
                return 0
        # One line spoils its batch: write them one by one to find it.
        written = 0
        for number, line, _ in records:
            written += await self._replay_chunk([(number, line)])
        return written

    async def _check_reachable(self) -> None:
        try:
            async with self.session() as session:
                await session.exec(text("SELECT 1"))
        except SQLAlchemyError as exc:
            raise OperationalError("SELECT 1", None, exc) from exc

    async def _set_aside(self, number: int, line: str, error: BaseException) -> None:
        log.error("spool line %d cannot be stored (%s: %s); kept in %s", number,
                  type(error).__name__, str(error)[:200], self.rejected_path)
        async with self._spool_lock:
            with self.rejected_path.open("a", encoding="utf-8", errors="surrogateescape") as f:
                f.write(line + "\n")

    @property
    def rejected_path(self) -> Path:
        """Spool lines that could not be stored, kept for a person to look at."""
        return self.spool_path.with_suffix(".rejected.jsonl")


# The database is away (as opposed to one record it refuses): stop and keep the rest.
OUTAGE = (OperationalError, InterfaceError, InternalError, DisconnectionError, PoolTimeout,
          OSError, TimeoutError)


def is_outage(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot take the write now (a connection that failed or
    was lost, a pool or driver timeout, a connection left out of step by one: asyncpg's
    "another operation is in progress", an InternalError), as opposed to a statement or value
    it refuses (StatementError, IntegrityError, DataError ...), which trying later would not
    mend."""
    return isinstance(exc, OUTAGE) or (isinstance(exc, DBAPIError)
                                       and exc.connection_invalidated)


def _create_engine(url: str, timeout: float) -> AsyncEngine:
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # One connection, shared in turn: SQLite has one writer at a time anyway, and a
        # connection per question (a thread each, fighting over the write lock) managed a
        # third of the writes per second (bench/telegram_throughput.py).
        engine = create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=timeout,
                                     connect_args={"timeout": timeout})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True,
                               pool_timeout=timeout,
                               connect_args={"timeout": timeout, "command_timeout": timeout})


MIGRATIONS = Path(__file__).parent / "migrations"


def upgrade_schema(url: str) -> None:
    """Bring the database to the newest schema with Alembic (blocking; call in a thread).

    Processes starting together take turns: the first migrates, the others find the schema
    current (a lock file beside an SQLite database; an advisory lock on PostgreSQL, taken in
    migrations/env.py).
    """
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if not url.startswith("sqlite"):
        command.upgrade(config, "head")
        return
    path = url.split(":///", 1)[-1]
    if not path or path == ":memory:":
        command.upgrade(config, "head")
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.migrate-lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            command.upgrade(config, "head")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def with_database(url: str, spool_path: Path, work: Callable[[Database], Awaitable[T]]) -> T:
    """For the command line: bring the schema up to date, open the database, run `work` on
    it, close it."""
    upgrade_schema(url)

    async def run() -> T:
        database = Database(url, spool_path)
        try:
            return await work(database)
        finally:
            await database.close()

    return asyncio.run(run())


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"

"""The database edge: every question, the people who ask, and follow-ups.

Writes go to SQLite or PostgreSQL through one async engine. When the database cannot be
reached, a question is appended to a local spool file instead and written later, so that no
question is ever lost and the user still gets a reply.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.models import FollowUp, Person, Question, utcnow

log = logging.getLogger(__name__)

# How long a write may take before the database counts as unavailable for this question.
WRITE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Asker:
    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None


@dataclass(frozen=True)
class QuestionRecord:
    """What to store about one question; also the spool's line format."""

    asker: Asker
    chat_id: int
    message_id: int
    text: str
    status: str
    asked_at: dt.datetime
    entry_id: str | None = None
    score: float | None = None
    coverage: float | None = None
    knowledge_version: str = ""
    wants_followup: bool = False

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        data["asked_at"] = self.asked_at.isoformat()
        return json.dumps(data, ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str) -> QuestionRecord:
        data = json.loads(line)
        data["asker"] = Asker(**data["asker"])
        data["asked_at"] = dt.datetime.fromisoformat(data["asked_at"])
        return cls(**data)


@dataclass(frozen=True)
class Recorded:
    question_id: int | None
    followup_id: int | None
    spooled: bool = False
    duplicate: bool = False


def _insert(session: AsyncSession, table: Any) -> Any:
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


async def upsert_person(session: AsyncSession, asker: Asker, seen: dt.datetime) -> None:
    values = {"id": asker.id, "first_name": asker.first_name, "last_name": asker.last_name,
              "username": asker.username, "language_code": asker.language_code,
              "first_seen": seen, "last_seen": seen}
    stmt = _insert(session, Person).values(**values)
    changed = {k: stmt.excluded[k] for k in ("first_name", "last_name", "username",
                                             "language_code", "last_seen")}
    await session.exec(stmt.on_conflict_do_update(index_elements=["id"], set_=changed))


async def record_question(session: AsyncSession, record: QuestionRecord) -> Recorded:
    """Store a question (once per chat message) and open its follow-up when it needs one."""
    await upsert_person(session, record.asker, record.asked_at)
    stmt = (
        _insert(session, Question)
        .values(person_id=record.asker.id, chat_id=record.chat_id, message_id=record.message_id,
                text=record.text, status=record.status, entry_id=record.entry_id,
                score=record.score, coverage=record.coverage,
                knowledge_version=record.knowledge_version, asked_at=record.asked_at)
        .on_conflict_do_nothing(index_elements=["chat_id", "message_id"])
        .returning(Question.id)
    )
    question_id = (await session.exec(stmt)).scalar()
    duplicate = question_id is None
    if duplicate:
        question_id = (await session.exec(
            select(Question.id).where(Question.chat_id == record.chat_id,
                                      Question.message_id == record.message_id)
        )).scalar_one()
    followup_id = None
    if record.wants_followup:
        followup_id = await open_followup(session, question_id, "unanswered", record.asked_at)
    await session.commit()
    return Recorded(question_id, followup_id, duplicate=duplicate)


async def open_followup(session: AsyncSession, question_id: int, reason: str,
                        when: dt.datetime | None = None) -> int:
    """The follow-up of a question, opened now unless it exists already."""
    stmt = (
        _insert(session, FollowUp)
        .values(question_id=question_id, status="open", reason=reason,
                created_at=when or utcnow())
        .on_conflict_do_nothing(index_elements=["question_id"])
        .returning(FollowUp.id)
    )
    followup_id = (await session.exec(stmt)).scalar()
    if followup_id is None:
        followup_id = (await session.exec(
            select(FollowUp.id).where(FollowUp.question_id == question_id)
        )).scalar_one()
    return followup_id


async def set_feedback(session: AsyncSession, question_id: int, person_id: int,
                       value: int) -> Question | None:
    """Record 👍 (+1) or 👎 (-1) on a question, only by the person who asked it."""
    await session.exec(
        update(Question)
        .where(Question.id == question_id, Question.person_id == person_id)
        .values(feedback=value)
    )
    await session.commit()
    return await session.get(Question, question_id)


async def question_count(session: AsyncSession, person_id: int | None = None) -> int:
    stmt = select(func.count()).select_from(Question)
    if person_id is not None:
        stmt = stmt.where(Question.person_id == person_id)
    return (await session.exec(stmt)).scalar_one()


class Database:
    """The async engine, sessions, and the spool for when the database is away."""

    def __init__(self, url: str, spool_path: Path, write_timeout: float = WRITE_TIMEOUT_S) -> None:
        self.url = url
        self.spool_path = spool_path
        self.write_timeout = write_timeout
        self.engine = _create_engine(url, write_timeout)
        self._spool_lock = asyncio.Lock()
        self._replay_lock = asyncio.Lock()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with AsyncSession(self.engine, expire_on_commit=False) as session:
            yield session

    async def close(self) -> None:
        await self.engine.dispose()

    async def save_question(self, record: QuestionRecord) -> Recorded:
        """Write the question, or spool it when the database cannot take it now."""
        try:
            async with asyncio.timeout(self.write_timeout), self.session() as session:
                recorded = await record_question(session, record)
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            if isinstance(exc, IntegrityError):
                raise
            log.warning("database unavailable (%s); question spooled", type(exc).__name__)
            await self._spool(record)
            return Recorded(None, None, spooled=True)
        if self.spool_path.exists():
            asyncio.get_running_loop().create_task(self.replay_spool())
        return recorded

    async def _spool(self, record: QuestionRecord) -> None:
        async with self._spool_lock:
            self.spool_path.parent.mkdir(parents=True, exist_ok=True)
            with self.spool_path.open("a", encoding="utf-8") as spool:
                spool.write(record.to_json() + "\n")

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
        lines = [line for line in taking.read_text(encoding="utf-8").splitlines() if line.strip()]
        written = 0
        try:
            for line in lines:
                async with asyncio.timeout(self.write_timeout), self.session() as session:
                    await record_question(session, QuestionRecord.from_json(line))
                written += 1
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            log.warning("spool replay stopped after %d of %d (%s)", written, len(lines),
                        type(exc).__name__)
        async with self._spool_lock:
            rest = lines[written:]
            if rest:
                with self.spool_path.open("a", encoding="utf-8") as spool:
                    spool.write("\n".join(rest) + "\n")
            taking.unlink()
        if written:
            log.info("replayed %d spooled question(s)", written)
        return written


def _create_engine(url: str, timeout: float) -> AsyncEngine:
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # One connection per task, no pool: SQLite serialises writers itself (WAL + busy wait).
        engine = create_async_engine(url, poolclass=NullPool,
                                     connect_args={"timeout": timeout})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True,
                               pool_timeout=timeout, connect_args={"timeout": timeout})


MIGRATIONS = Path(__file__).parent / "migrations"


def upgrade_schema(url: str) -> None:
    """Bring the database to the newest schema with Alembic (blocking; call in a thread)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(config, "head")

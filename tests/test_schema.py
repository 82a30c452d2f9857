"""The stored shape holds: the migrations build what the models declare, statuses are stored
as their words and moments in UTC, and what is read back is the enum and an aware UTC moment,
on SQLite (which keeps no time zone) and PostgreSQL alike."""

from __future__ import annotations

import asyncio
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel, select

from bot.answering import STATUSES
from bot.storage.database import Database, upgrade_schema
from bot.storage.models import (
    FollowUp,
    FollowUpReason,
    FollowUpStatus,
    Question,
    QuestionStatus,
    utcnow,
)
from bot.storage.records import Asker, QuestionRecord, record_question


async def test_the_migrations_build_the_tables_the_models_declare(database_url: str) -> None:
    await asyncio.to_thread(upgrade_schema, database_url)
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"compare_type": True}),
                SQLModel.metadata))
    finally:
        await engine.dispose()
    assert differences == []


async def test_statuses_and_moments_are_stored_as_before_and_read_as_enum_and_utc(
        database_url: str, tmp_path) -> None:
    """The words and the UTC wall time the rows always held; an enum and an aware UTC
    moment in the code, whichever database, and a moment given in Korean time stored as UTC."""
    await asyncio.to_thread(upgrade_schema, database_url)
    database = Database(database_url, tmp_path / "spool.jsonl")
    seoul = ZoneInfo("Asia/Seoul")
    asked = dt.datetime(2026, 3, 2, 9, 30, 15, 250_000, tzinfo=seoul)  # 00:30:15.25 UTC
    try:
        async with database.session() as session:
            recorded = await record_question(session, QuestionRecord(
                Asker(7, "김"), 7, 1, "출범일은 언제예요?", QuestionStatus.UNANSWERED, asked,
                wants_followup=True))
            sqlite = database_url.startswith("sqlite")
            moment = "q.asked_at" if sqlite else "CAST(q.asked_at AT TIME ZONE 'UTC' AS TEXT)"
            [row] = (await session.exec(text(
                f"SELECT q.status, f.status, f.reason, {moment} "
                "FROM question q JOIN followup f ON f.question_id = q.id"))).all()
        assert tuple(row) == ("unanswered", "open", "unanswered",
                              "2026-03-02 00:30:15.250000" if sqlite else "2026-03-02 00:30:15.25")
        async with database.session() as session:
            question = (await session.exec(select(Question))).one()
            followup = await session.get(FollowUp, recorded.followup_id)
        assert question.status is QuestionStatus.UNANSWERED
        assert followup.status is FollowUpStatus.OPEN
        assert followup.reason is FollowUpReason.UNANSWERED
        assert question.asked_at == asked and question.asked_at.tzinfo == dt.UTC
    finally:
        await database.close()


async def test_a_status_not_of_its_enum_is_refused_before_it_is_written(
        database_url: str, tmp_path) -> None:
    await asyncio.to_thread(upgrade_schema, database_url)
    database = Database(database_url, tmp_path / "spool.jsonl")
    try:
        async with database.session() as session:
            with pytest.raises(StatementError, match="'answerd' is not a valid QuestionStatus"):
                await record_question(session, QuestionRecord(
                    Asker(8, "이"), 8, 1, "질문", "answerd", utcnow()))
    finally:
        await database.close()


def test_every_decision_of_answering_is_a_question_status() -> None:
    assert {QuestionStatus(status) for status in STATUSES} == {
        QuestionStatus.ANSWERED, QuestionStatus.UNANSWERED, QuestionStatus.OFF_TOPIC,
        QuestionStatus.SMALLTALK}

"""A period of the records, as every report reads it: the questions and follow-ups from one
moment to another, the people who asked, and the moments shown in Korean time.
"""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass

from bot.replies import KST
from bot.settings import Settings
from bot.storage.database import Database, safe_url
from bot.storage.models import Person, Question
from bot.storage.records import FollowUpCase, followups_between, open_followups, questions_between

# --- time -----------------------------------------------------------------------------------


def kst(when: dt.datetime | None) -> dt.datetime | None:
    """A stored moment (aware, bot.storage.models.UTCDateTime) in Korean time."""
    return when.astimezone(KST) if when is not None else None


def kst_text(when: dt.datetime | None) -> str:
    """`2025-11-03 14:05`: sorts as text, and spreadsheets read it as a date and time."""
    local = kst(when)
    return f"{local:%Y-%m-%d %H:%M}" if local else ""


def day_start(day: dt.date) -> dt.datetime:
    """Midnight of a Korean day, in UTC (how the database compares moments)."""
    return dt.datetime.combine(day, dt.time(), KST).astimezone(dt.UTC)


# --- reading the records --------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Everything a report shows about [since, until)."""

    since: dt.datetime
    until: dt.datetime
    questions: list[Question]
    # Follow-ups opened in the period.
    cases: list[FollowUpCase]
    # The follow-up of each question of the period, wherever it was opened.
    case_of_question: dict[int, FollowUpCase]
    people: dict[int, Person]
    # Open follow-ups in all, the period's and any others.
    open_total: int

    @property
    def first_day(self) -> dt.date:
        return self.since.astimezone(KST).date()

    @property
    def last_day(self) -> dt.date:
        return (self.until - dt.timedelta(microseconds=1)).astimezone(KST).date()


async def read_period(database: Database, since: dt.datetime, until: dt.datetime) -> Period:
    async with database.session() as session:
        questions = await questions_between(session, since, until)
        # From `since` on without end: a question's follow-up may be opened after the period.
        later = await followups_between(session, since)
        _, open_total = await open_followups(session, 0, 0)
        people = {}
        for person_id in sorted({q.person_id for q in questions}):
            person = await session.get(Person, person_id)
            if person is not None:
                people[person_id] = person
    cases = [c for c in later if c.followup.created_at < until]
    return Period(since, until, questions, cases, {c.question.id: c for c in later}, people,
                  open_total)


def database_error(settings: Settings, exc: Exception) -> int:
    print(f"The database ({safe_url(settings.database_url)}) could not be read: "
          f"{type(exc).__name__}: {exc}", file=sys.stderr)
    return 1


def handle(person: Person | None) -> str:
    return f"@{person.username}" if person and person.username else ""

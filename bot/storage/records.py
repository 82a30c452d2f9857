"""Reads and writes of the bot's records: people, questions, follow-ups, the audit log.

Every function takes an AsyncSession (bot/storage/database.py opens them) and returns domain
objects; handlers never write SQL.

One module over 400 lines on purpose: every read and write of the database in one place.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, func, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import aliased
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.storage.models import (
    AdminAction,
    BotState,
    EventKind,
    FollowUp,
    FollowUpEvent,
    FollowUpReason,
    FollowUpStatus,
    InboxState,
    InboxUpdate,
    KnowledgeState,
    Person,
    Question,
    QuestionStatus,
    SentOnce,
    utcnow,
)

log = logging.getLogger(__name__)

# How long a write may take before the database counts as unavailable for this question.
WRITE_TIMEOUT_S = 5.0


# Characters no database we support can store: NUL (PostgreSQL text refuses it) and lone
# UTF-16 surrogates (not encodable as UTF-8, which JSON and some clients still produce).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> str:
    """`text` as given, with the characters a database would refuse replaced by U+FFFD: a
    question with a NUL in it is stored like any other instead of failing its whole batch."""
    return _UNSTORABLE.sub("\ufffd", text)


def _storable_or_none(text: str | None) -> str | None:
    return None if text is None else storable(text)


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
    status: QuestionStatus
    asked_at: dt.datetime
    entry_id: str | None = None
    score: float | None = None
    coverage: float | None = None
    knowledge_version: str = ""
    wants_followup: bool = False

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        data["asked_at"] = self.asked_at.isoformat()
        # A lone surrogate would make the spool file unwritable as UTF-8.
        return storable(json.dumps(data, ensure_ascii=False))

    @classmethod
    def from_json(cls, line: str) -> QuestionRecord:
        data = json.loads(line)
        data["asker"] = Asker(**data["asker"])
        data["asked_at"] = dt.datetime.fromisoformat(data["asked_at"])
        data["status"] = QuestionStatus(data["status"])
        return cls(**data)


@dataclass(frozen=True)
class Recorded:
    question_id: int | None
    followup_id: int | None
    spooled: bool = False
    duplicate: bool = False


def _insert(session: AsyncSession, model: Any) -> Any:
    """An INSERT for `model`'s table in the dialect's flavour (ON CONFLICT works on both).

    It is a Core statement on the table, not the ORM class: the ORM's bulk-insert path cost
    more than the write itself on every question.
    """
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model.__table__)


async def upsert_person(session: AsyncSession, asker: Asker, seen: dt.datetime) -> None:
    await _upsert_people(session, [(asker, seen)])


async def _upsert_people(session: AsyncSession, seen: list[tuple[Asker, dt.datetime]]) -> None:
    """Create or refresh the people who wrote: one statement for all of them."""
    latest = {asker.id: (asker, when) for asker, when in sorted(seen, key=lambda p: p[1])}
    rows = [{"id": a.id, "first_name": storable(a.first_name),
             "last_name": _storable_or_none(a.last_name),
             "username": _storable_or_none(a.username),
             "language_code": _storable_or_none(a.language_code),
             "first_seen": when, "last_seen": when} for a, when in latest.values()]
    stmt = _insert(session, Person)
    changed = {k: stmt.excluded[k] for k in ("first_name", "last_name", "username",
                                             "language_code", "last_seen")}
    await session.exec(stmt.on_conflict_do_update(index_elements=["id"], set_=changed), params=rows)


async def record_question(session: AsyncSession, record: QuestionRecord) -> Recorded:
    """Store a question (once per chat message) and open its follow-up when it needs one."""
    return (await record_questions(session, [record]))[0]


async def record_questions(session: AsyncSession, records: list[QuestionRecord]
                           ) -> list[Recorded]:
    """Store questions in one transaction, each once per chat message, and open the
    follow-ups of those that need one; what became of each, in order.

    One statement per table whatever the number of questions: under load, the questions
    waiting for the database are written together (bot/storage/database.py), and a transaction per
    question cost more than the rest of answering it (bench/telegram_throughput.py).
    """
    await _upsert_people(session, [(r.asker, r.asked_at) for r in records])
    stored = await _insert_questions(session, [dict(
        person_id=r.asker.id, chat_id=r.chat_id, message_id=r.message_id, text=storable(r.text),
        status=r.status, entry_id=r.entry_id, score=r.score, coverage=r.coverage,
        knowledge_version=r.knowledge_version, asked_at=r.asked_at) for r in records])
    wanted = [(question_id, r.asked_at)
              for r, (question_id, _) in zip(records, stored, strict=True) if r.wants_followup]
    followups = ((await _open_followups(session, wanted, FollowUpReason.UNANSWERED))[0]
                 if wanted else {})
    await session.commit()
    return [Recorded(question_id, followups.get(question_id), duplicate=duplicate)
            for question_id, duplicate in stored]


async def _insert_questions(session: AsyncSession, rows: list[dict[str, Any]]
                            ) -> list[tuple[int, bool]]:
    """Insert questions unless their chat message is stored already: for each row, its id
    and whether it was stored before (a redelivered update). The same message twice in
    `rows` is stored once; the second counts as redelivered."""
    stmt = (
        _insert(session, Question)
        .on_conflict_do_nothing(index_elements=["chat_id", "message_id"])
        .returning(Question.__table__.c.id, Question.__table__.c.chat_id,
                   Question.__table__.c.message_id)
    )
    firsts: dict[tuple[int, int], dict[str, Any]] = {}
    for row in rows:
        firsts.setdefault((row["chat_id"], row["message_id"]), row)
    inserted = {(chat_id, message_id): question_id for question_id, chat_id, message_id
                in (await session.exec(stmt, params=list(firsts.values()))).all()}
    missing = [key for key in firsts if key not in inserted]
    stored_before: dict[tuple[int, int], int] = {}
    if missing:
        found = await session.exec(
            select(Question.id, Question.chat_id, Question.message_id)
            .where(tuple_(Question.chat_id, Question.message_id).in_(missing)))
        stored_before = {(chat_id, message_id): question_id
                         for question_id, chat_id, message_id in found.all()}
    result, seen = [], set()
    for row in rows:
        key = (row["chat_id"], row["message_id"])
        new = key in inserted and key not in seen
        seen.add(key)
        result.append((inserted[key] if key in inserted else stored_before[key], not new))
    return result


async def _insert_question(session: AsyncSession, **values: Any) -> tuple[int, bool]:
    return (await _insert_questions(session, [values]))[0]


async def open_followup(session: AsyncSession, question_id: int, reason: FollowUpReason,
                        when: dt.datetime | None = None) -> int:
    """The follow-up of a question, opened now unless it exists already."""
    return (await _open_followups(session, [(question_id, when or utcnow())], reason))[0][
        question_id]


async def _open_followups(session: AsyncSession, questions: list[tuple[int, dt.datetime]],
                          reason: FollowUpReason) -> tuple[dict[int, int], set[int]]:
    """The follow-ups of questions (question id -> follow-up id), opened now for those that
    have none yet, and the questions whose follow-up this call opened."""
    rows = {question_id: {"question_id": question_id, "status": FollowUpStatus.OPEN,
                          "reason": reason,
                          "created_at": when} for question_id, when in questions}
    table = FollowUp.__table__
    stmt = (
        _insert(session, FollowUp)
        .on_conflict_do_nothing(index_elements=["question_id"])
        .returning(table.c.question_id, table.c.id)
    )
    opened = dict((await session.exec(stmt, params=list(rows.values()))).all())
    followups = dict(opened)
    missing = [question_id for question_id in rows if question_id not in opened]
    if missing:
        found = await session.exec(
            select(FollowUp.question_id, FollowUp.id).where(FollowUp.question_id.in_(missing)))
        followups.update(dict(found.all()))
    return followups, set(opened)


async def open_new_followup(session: AsyncSession, question_id: int, reason: FollowUpReason
                            ) -> tuple[int, bool]:
    """The follow-up of a question, and whether this call opened it (False: it was open)."""
    followups, opened = await _open_followups(session, [(question_id, utcnow())], reason)
    await session.commit()
    return followups[question_id], question_id in opened


async def record_consultation(session: AsyncSession, asker: Asker, chat_id: int,
                              message_id: int, text: str, details: str,
                              when: dt.datetime | None = None) -> Recorded:
    """A consultation request from the eligibility check: a question (status "consultation")
    whose follow-up (reason "consultation") the secretariat answers like any other. `text` is
    the one-line summary, `details` the answers laid out (kept as the "consultation" event).
    Sent twice from the same message, it is stored once."""
    when = when or utcnow()
    await upsert_person(session, asker, when)
    question_id, duplicate = await _insert_question(
        session, person_id=asker.id, chat_id=chat_id, message_id=message_id, text=storable(text),
        status=QuestionStatus.CONSULTATION, asked_at=when)
    followup_id = await open_followup(session, question_id, FollowUpReason.CONSULTATION, when)
    if not duplicate:
        session.add(FollowUpEvent(followup_id=followup_id, kind=EventKind.CONSULTATION,
                                  author_id=asker.id, text=storable(details), at=when))
    await session.commit()
    return Recorded(question_id, followup_id, duplicate=duplicate)


async def set_feedback(session: AsyncSession, question_id: int, person_id: int,
                       value: int) -> tuple[Question | None, bool]:
    """Record 👍 (+1) or 👎 (-1) on a question, once, and only by the person who asked it:
    the question, and whether this press counted (False: rated already, or not theirs)."""
    counted = (await session.exec(
        update(Question)
        .where(Question.id == question_id, Question.person_id == person_id,
               Question.feedback.is_(None))
        .values(feedback=value)
    )).rowcount == 1
    await session.commit()
    return await session.get(Question, question_id), counted


async def set_feedback_reason(session: AsyncSession, question_id: int, person_id: int,
                              reason: str) -> bool:
    """Record why a 👎 answer missed, once, only by the person who asked; whether it counted."""
    counted = (await session.exec(
        update(Question)
        .where(Question.id == question_id, Question.person_id == person_id,
               Question.feedback == -1, Question.feedback_reason.is_(None))
        .values(feedback_reason=reason)
    )).rowcount == 1
    await session.commit()
    return counted


async def question_count(session: AsyncSession, person_id: int | None = None) -> int:
    stmt = select(func.count()).select_from(Question)
    if person_id is not None:
        stmt = stmt.where(Question.person_id == person_id)
    return (await session.exec(stmt)).scalar_one()




# --- the secretariat's desk -----------------------------------------------------------------


@dataclass(frozen=True)
class FollowUpCase:
    """A follow-up with what the secretariat needs to see about it."""

    followup: FollowUp
    question: Question
    person: Person | None
    earlier_questions: int
    events: tuple[FollowUpEvent, ...] = ()


async def followup_case(session: AsyncSession, followup_id: int) -> FollowUpCase | None:
    cases = await followup_cases(session, [followup_id])
    return cases[0] if cases else None


# Ids per IN (...) list: well inside every database's limit on bound parameters.
IDS_PER_QUERY = 500


async def followup_cases(session: AsyncSession, followup_ids: list[int]) -> list[FollowUpCase]:
    """The cases of these follow-ups, in the order given (ids that do not exist are left
    out): three queries per 500 cases, not four per case."""
    cases: list[FollowUpCase] = []
    for start in range(0, len(followup_ids), IDS_PER_QUERY):
        cases += await _followup_cases(session, followup_ids[start:start + IDS_PER_QUERY])
    return cases


async def _followup_cases(session: AsyncSession, followup_ids: list[int]) -> list[FollowUpCase]:
    rows = (await session.exec(
        select(FollowUp, Question, Person)
        .join(Question, Question.id == FollowUp.question_id)
        .join(Person, Person.id == Question.person_id, isouter=True)
        .where(FollowUp.id.in_(followup_ids))
    )).all()
    found = {followup.id: (followup, question, person) for followup, question, person in rows}
    earlier_question = aliased(Question)
    earlier = dict((await session.exec(
        select(Question.id, func.count(earlier_question.id))
        .join(earlier_question, (earlier_question.person_id == Question.person_id)
              & (earlier_question.id < Question.id))
        .where(Question.id.in_([question.id for _, question, _ in found.values()]))
        .group_by(Question.id)
    )).all())
    events: dict[int, list[FollowUpEvent]] = {}
    for event in (await session.exec(
        select(FollowUpEvent).where(FollowUpEvent.followup_id.in_(list(found)))
        .order_by(FollowUpEvent.id)
    )).scalars():
        events.setdefault(event.followup_id, []).append(event)
    return [FollowUpCase(followup, question, person, earlier.get(question.id, 0),
                         tuple(events.get(followup.id, ())))
            for followup, question, person in (found[i] for i in followup_ids if i in found)]


async def add_event(session: AsyncSession, followup_id: int, kind: EventKind,
                    author_id: int | None = None, text: str | None = None,
                    group_message_id: int | None = None) -> FollowUpEvent:
    event = FollowUpEvent(followup_id=followup_id, kind=kind, author_id=author_id,
                          text=_storable_or_none(text),
                          group_message_id=group_message_id, at=utcnow())
    session.add(event)
    if kind == EventKind.POSTED and group_message_id is not None:
        await session.exec(update(FollowUp).where(FollowUp.id == followup_id)
                           .values(group_message_id=group_message_id, post_error=None))
    await session.commit()
    return event


async def followup_for_group_message(session: AsyncSession, message_id: int) -> FollowUp | None:
    """The follow-up a message in the secretariat group is about (its post or a confirmation)."""
    found = (await session.exec(
        select(FollowUp).where(FollowUp.group_message_id == message_id)
    )).scalars().first()
    if found is not None:
        return found
    event = (await session.exec(
        select(FollowUpEvent).where(FollowUpEvent.group_message_id == message_id)
    )).scalars().first()
    return await session.get(FollowUp, event.followup_id) if event else None


async def record_answer(session: AsyncSession, followup_id: int, author_id: int,
                        text: str) -> FollowUpEvent:
    """A secretariat answer that reached the asker: the first answers it, later ones add."""
    text = storable(text)
    followup = await session.get(FollowUp, followup_id)
    first = followup.status != FollowUpStatus.ANSWERED
    if first:
        followup.status = FollowUpStatus.ANSWERED
        followup.answer = text
        followup.answered_by = author_id
        followup.answered_at = utcnow()
    else:
        followup.answer = f"{followup.answer}\n\n{text}"
    session.add(followup)
    return await add_event(session, followup_id,
                           EventKind.ANSWER if first else EventKind.ADDITION,
                           author_id, text)


async def close_followup(session: AsyncSession, followup_id: int, by: int,
                         kb_gap: bool = False, reason: str | None = None
                         ) -> tuple[FollowUp | None, bool]:
    """Close as needing no answer (with the `reason` the asker is told), or mark it a
    knowledge-base gap (it stays open then); the follow-up, and whether this changed it
    (pressed twice, the second changes nothing)."""
    followup = await session.get(FollowUp, followup_id)
    if followup is None:
        return None, False
    if (followup.kb_gap if kb_gap else followup.status == FollowUpStatus.CLOSED):
        return followup, False
    if kb_gap:
        followup.kb_gap = True
    else:
        followup.status = FollowUpStatus.CLOSED
        followup.closed_by = by
        followup.closed_at = utcnow()
    session.add(followup)
    await add_event(session, followup_id, EventKind.GAP if kb_gap else EventKind.CLOSED, by,
                    reason)
    return followup, True


async def open_followups(session: AsyncSession, offset: int = 0, limit: int = 10
                         ) -> tuple[list[FollowUpCase], int]:
    """Open follow-ups, oldest first, one page; and how many are open in all."""
    total = (await session.exec(
        select(func.count()).select_from(FollowUp).where(FollowUp.status == FollowUpStatus.OPEN)
    )).scalar_one()
    ids = (await session.exec(
        select(FollowUp.id).where(FollowUp.status == FollowUpStatus.OPEN)
        .order_by(FollowUp.created_at, FollowUp.id).offset(offset).limit(limit)
    )).scalars().all()
    return await followup_cases(session, list(ids)), total


async def followups_of(session: AsyncSession, person_id: int, limit: int = 10
                       ) -> tuple[list[FollowUpCase], int]:
    """The follow-ups of one person's questions, newest first, at most `limit`; and how many
    there are in all."""
    mine = (select(FollowUp.id).join(Question, Question.id == FollowUp.question_id)
            .where(Question.person_id == person_id))
    total = (await session.exec(select(func.count()).select_from(mine.subquery()))).scalar_one()
    ids = (await session.exec(mine.order_by(FollowUp.created_at.desc(), FollowUp.id.desc())
                              .limit(limit))).scalars().all()
    return await followup_cases(session, list(ids)), total


async def unposted_followups(session: AsyncSession, now: dt.datetime, limit: int = 50
                             ) -> list[int]:
    """Open follow-ups not yet in the secretariat group whose next try is due, oldest first."""
    return list((await session.exec(
        select(FollowUp.id)
        .where(FollowUp.group_message_id.is_(None), FollowUp.status != FollowUpStatus.CLOSED,
               (FollowUp.post_after.is_(None)) | (FollowUp.post_after <= now))
        .order_by(FollowUp.id).limit(limit)
    )).scalars().all())


async def claim_followup_post(session: AsyncSession, followup_id: int, now: dt.datetime,
                              until: dt.datetime) -> bool:
    """Take the posting of a follow-up until `until`, unless it is posted or another process
    holds it: one post per follow-up even with several bot processes on one database."""
    claimed = await session.exec(
        update(FollowUp)
        .where(FollowUp.id == followup_id, FollowUp.group_message_id.is_(None),
               (FollowUp.post_after.is_(None)) | (FollowUp.post_after <= now))
        .values(post_after=until))
    await session.commit()
    return claimed.rowcount == 1


async def followup_post_failed(session: AsyncSession, followup_id: int, error: str,
                               retry_at: dt.datetime) -> int:
    """Note a failed post and when to try again; the number of attempts so far."""
    await session.exec(
        update(FollowUp).where(FollowUp.id == followup_id)
        .values(post_attempts=FollowUp.post_attempts + 1, post_error=storable(error[:500]),
                post_after=retry_at))
    await session.commit()
    return (await session.exec(select(FollowUp.post_attempts)
                               .where(FollowUp.id == followup_id))).scalar_one()


async def unposted_count(session: AsyncSession) -> int:
    return (await session.exec(
        select(func.count()).select_from(FollowUp)
        .where(FollowUp.group_message_id.is_(None), FollowUp.status != FollowUpStatus.CLOSED)
    )).scalar_one()


async def record_reply_failure(session: AsyncSession, question_id: int, error: str) -> None:
    """The reply to a question could not be sent within its retry window."""
    await session.exec(update(Question).where(Question.id == question_id)
                       .values(reply_error=storable(error[:500]), reply_failed_at=utcnow()))
    await session.commit()


async def failed_replies(session: AsyncSession, limit: int = 5
                         ) -> tuple[list[tuple[Question, Person | None]], int]:
    """Questions whose reply never reached the asker, newest first; and how many in all."""
    total = (await session.exec(
        select(func.count()).select_from(Question).where(Question.reply_failed_at.is_not(None))
    )).scalar_one()
    rows = (await session.exec(
        select(Question, Person).join(Person, Person.id == Question.person_id, isouter=True)
        .where(Question.reply_failed_at.is_not(None))
        .order_by(Question.reply_failed_at.desc(), Question.id.desc()).limit(limit)
    )).all()
    return [(question, person) for question, person in rows], total


async def followups_between(session: AsyncSession, since: dt.datetime | None = None,
                            until: dt.datetime | None = None,
                            status: FollowUpStatus | None = None
                            ) -> list[FollowUpCase]:
    stmt = select(FollowUp.id).order_by(FollowUp.created_at, FollowUp.id)
    if since is not None:
        stmt = stmt.where(FollowUp.created_at >= since)
    if until is not None:
        stmt = stmt.where(FollowUp.created_at < until)
    if status is not None:
        stmt = stmt.where(FollowUp.status == status)
    return await followup_cases(session, list((await session.exec(stmt)).scalars()))


async def questions_between(session: AsyncSession, since: dt.datetime | None = None,
                            until: dt.datetime | None = None) -> list[Question]:
    stmt = select(Question).order_by(Question.asked_at, Question.id)
    if since is not None:
        stmt = stmt.where(Question.asked_at >= since)
    if until is not None:
        stmt = stmt.where(Question.asked_at < until)
    return list((await session.exec(stmt)).scalars().all())


async def log_action(session: AsyncSession, person_id: int, action: str, detail: str = "",
                     allowed: bool = True) -> None:
    session.add(AdminAction(person_id=person_id, action=storable(action), detail=storable(detail),
                            allowed=allowed, at=utcnow()))
    await session.commit()


async def admin_actions(session: AsyncSession, since: dt.datetime | None = None
                        ) -> list[AdminAction]:
    stmt = select(AdminAction).order_by(AdminAction.at, AdminAction.id)
    if since is not None:
        stmt = stmt.where(AdminAction.at >= since)
    return list((await session.exec(stmt)).scalars().all())


# --- sends made at most once --------------------------------------------------------------


class Claim(StrEnum):
    """Where a send made at most once stands, as its claim finds it."""

    NEW = "new"  # claimed now (or before by this same update, which never sent it): send it
    RESUMED = "resumed"  # this same update was sending it when its process stopped: it may
    #                      have gone out, or not
    SENT = "sent"  # sent already (its message is noted)
    ELSEWHERE = "elsewhere"  # another update claimed it and is (or was) sending it


async def claim_send(session: AsyncSession, key: str, update_id: int | None = None) -> Claim:
    """Claim the send `key` names (a callback id, a secretariat reply, a notice about a
    follow-up) for the update `update_id`; the claim stays, so that a redelivered update or
    press sends nothing more, while the same update handled again after a crash carries on."""
    stmt = (_insert(session, SentOnce).values(key=key, at=utcnow(), update_id=update_id)
            .on_conflict_do_nothing(index_elements=["key"]).returning(SentOnce.__table__.c.key))
    claimed = (await session.exec(stmt)).first() is not None
    await session.commit()
    if claimed:
        return Claim.NEW
    found = await session.get(SentOnce, key)
    if found is None:  # released meanwhile: the next attempt claims it
        return Claim.ELSEWHERE
    if found.message_id is not None:
        return Claim.SENT
    if update_id is None or found.update_id != update_id:
        return Claim.ELSEWHERE
    if found.chat_id is None:  # its process stopped before the request went out
        return Claim.NEW
    return Claim.RESUMED


async def mark_going_out(session: AsyncSession, key: str, chat_id: int) -> None:
    """A claimed send's request is going out to `chat_id` now: from here until its message
    is noted, a crash leaves unknown whether it was sent."""
    await session.exec(update(SentOnce).where(SentOnce.key == key, SentOnce.chat_id.is_(None))
                       .values(chat_id=chat_id))
    await session.commit()


async def release_send(session: AsyncSession, key: str) -> None:
    """The send failed: let the next attempt try again."""
    await session.exec(delete(SentOnce).where(SentOnce.key == key))
    await session.commit()


async def note_sent(session: AsyncSession, key: str, chat_id: int, message_id: int) -> None:
    """The message a claimed send became (to edit it when its source is edited). Not
    committed: the caller commits it with what the send means (an answer recorded, …)."""
    await session.exec(update(SentOnce).where(SentOnce.key == key)
                       .values(chat_id=chat_id, message_id=message_id))


async def sent_message(session: AsyncSession, key: str) -> SentOnce | None:
    return await session.get(SentOnce, key)


async def forget_button_presses(session: AsyncSession, before: dt.datetime) -> int:
    """Drop the record of button presses older than `before`: Telegram keeps an update for
    a day at most, so an older press cannot come again. Replies stay (they can be edited)."""
    removed = await session.exec(delete(SentOnce).where(SentOnce.key.startswith("callback:"),
                                                        SentOnce.at < before))
    await session.commit()
    return removed.rowcount


# --- the knowledge version every process serves --------------------------------------------


async def active_knowledge(session: AsyncSession) -> KnowledgeState | None:
    return await session.get(KnowledgeState, 1)


async def activate_knowledge(session: AsyncSession, version: str,
                             fingerprints: dict[str, str], by: int | None = None) -> None:
    """Record `version` as the one every bot process should serve."""
    values = {"id": 1, "version": version, "fingerprints": json.dumps(fingerprints),
              "updated_by": by, "updated_at": utcnow()}
    stmt = _insert(session, KnowledgeState).values(**values)
    await session.exec(stmt.on_conflict_do_update(
        index_elements=["id"], set_={k: stmt.excluded[k] for k in values if k != "id"}))
    await session.commit()


@dataclass(frozen=True)
class Disliked:
    """An FAQ entry whose answers users marked 👎, and why (bot.handlers.feedback.REASONS)."""

    entry_id: str
    count: int
    reasons: dict[str, int]

    @property
    def unexplained(self) -> int:
        """The 👎 given without a reason."""
        return self.count - sum(self.reasons.values())


def tally_disliked(rows: Iterable[tuple[str, str | None, int]], limit: int = 5
                   ) -> list[Disliked]:
    """(entry id, reason or None, count) rows as the most 👎 entries, most first, each with
    its reasons most given first."""
    counts: dict[str, int] = {}
    reasons: dict[str, dict[str, int]] = {}
    for entry_id, reason, count in rows:
        counts[entry_id] = counts.get(entry_id, 0) + count
        if reason is not None:
            given = reasons.setdefault(entry_id, {})
            given[reason] = given.get(reason, 0) + count
    top = sorted(counts, key=lambda e: (-counts[e], e))[:limit]
    return [Disliked(e, counts[e], dict(sorted(reasons.get(e, {}).items(),
                                               key=lambda p: (-p[1], p[0])))) for e in top]


async def most_disliked(session: AsyncSession, limit: int = 5) -> list[Disliked]:
    """FAQ entries whose answers users marked 👎 most, with the count and the reasons."""
    rows = await session.exec(
        select(Question.entry_id, Question.feedback_reason, func.count())
        .where(Question.feedback == -1, Question.entry_id.is_not(None))
        .group_by(Question.entry_id, Question.feedback_reason))
    return tally_disliked(rows.all(), limit)


# --- python-telegram-bot's persisted state (bot/storage/persistence.py) --------------------


async def bot_states(session: AsyncSession) -> list[BotState]:
    return list((await session.exec(select(BotState))).scalars().all())


async def save_bot_states(session: AsyncSession, changes: dict[tuple[str, str], str | None]
                          ) -> None:
    """Write JSON data by (kind, key) in one transaction; None deletes the row."""
    gone = [k for k, v in changes.items() if v is None]
    if gone:
        await session.exec(delete(BotState).where(tuple_(BotState.kind, BotState.key).in_(gone)))
    now = utcnow()
    for (kind, key), data in changes.items():
        if data is None:
            continue
        stmt = _insert(session, BotState).values(kind=kind, key=key, data=data, updated_at=now)
        await session.exec(stmt.on_conflict_do_update(
            index_elements=["kind", "key"],
            set_={"data": stmt.excluded.data, "updated_at": stmt.excluded.updated_at}))
    await session.commit()


# --- the inbox of updates (bot/delivery/inbox.py) ------------------------------------------

@dataclass(frozen=True)
class InboxNote:
    """An update to note in the inbox; also the inbox spool's line format (with marks)."""

    bot_id: int
    update_id: int
    payload: str
    owner: str
    received_at: dt.datetime
    user_id: int | None = None


async def note_updates(session: AsyncSession, notes: list[InboxNote]) -> set[int]:
    """Note updates unless noted before; the ids noted now (the others are redeliveries).
    All of one bot."""
    if not notes:
        return set()
    table = InboxUpdate.__table__
    stmt = (_insert(session, InboxUpdate)
            .on_conflict_do_nothing(index_elements=["bot_id", "update_id"])
            .returning(table.c.update_id))
    rows = {n.update_id: {"bot_id": n.bot_id, "update_id": n.update_id, "payload": n.payload,
                          "state": InboxState.RECEIVED, "owner": n.owner,
                          "received_at": n.received_at, "user_id": n.user_id}
            for n in notes}
    return set((await session.exec(stmt, params=list(rows.values()))).scalars().all())


async def mark_updates(session: AsyncSession, bot_id: int, marks: dict[int, InboxState],
                       owner: str | None = None) -> set[int]:
    """Move a bot's updates to a state: `replying` from received (or again), `received` back
    from replying (the send failed for sure), `replied` from either (a spool replay gives an
    update's last mark only), `done` from any; done is final. With `owner`, only that
    process's updates move (another may have taken one over). The ids that did not move to
    `replying` (asked only of that state: its reply is not sent unless it moved)."""
    received, replying, replied, done = (InboxState.RECEIVED, InboxState.REPLYING,
                                         InboxState.REPLIED, InboxState.DONE)
    before = {replying: [received, replying], received: [replying],
              replied: [received, replying], done: [received, replying, replied]}
    table = InboxUpdate.__table__
    refused: set[int] = set()
    for state, earlier in before.items():
        ids = [update_id for update_id, s in marks.items() if s == state]
        if not ids:
            continue
        values: dict[str, Any] = {"state": state}
        if state == done:
            values["finished_at"] = utcnow()
        stmt = update(InboxUpdate).where(
            InboxUpdate.bot_id == bot_id, InboxUpdate.update_id.in_(ids),
            InboxUpdate.state.in_(earlier)).values(**values)
        if owner is not None:
            stmt = stmt.where(InboxUpdate.owner == owner)
        if state == replying:  # RETURNING costs a round trip to SQLite's thread: only here
            moved = (await session.exec(stmt.returning(table.c.update_id))).scalars().all()
            refused = set(ids) - set(moved)
        else:
            await session.exec(stmt)
    return refused


async def unfinished_before(session: AsyncSession, bot_id: int, user_id: int, update_id: int,
                            but: str) -> bool:
    """Whether a process other than `but` has an earlier update of this user unfinished."""
    found = await session.exec(
        select(InboxUpdate.update_id).where(
            InboxUpdate.bot_id == bot_id, InboxUpdate.user_id == user_id,
            InboxUpdate.update_id < update_id, InboxUpdate.state != InboxState.DONE,
            InboxUpdate.owner != but).limit(1))
    return found.first() is not None


async def inbox_owners(session: AsyncSession, bot_id: int, but: str) -> list[str]:
    """The processes of this bot other than `but` with updates not done."""
    return list((await session.exec(
        select(InboxUpdate.owner).where(InboxUpdate.bot_id == bot_id,
                                        InboxUpdate.state != InboxState.DONE,
                                        InboxUpdate.owner != but)
        .distinct())).scalars().all())


async def take_over_updates(session: AsyncSession, bot_id: int, dead: str, new_owner: str
                            ) -> list[InboxUpdate]:
    """Make `new_owner` the owner of the updates `dead` left unfinished; those taken, oldest
    first. Two processes taking over at once: one gets them all, the other none."""
    table = InboxUpdate.__table__
    taken = await session.exec(
        update(InboxUpdate).where(InboxUpdate.bot_id == bot_id, InboxUpdate.owner == dead,
                                  InboxUpdate.state != InboxState.DONE)
        .values(owner=new_owner)
        .returning(table.c.update_id, table.c.payload, table.c.state))
    rows = [InboxUpdate(bot_id=bot_id, update_id=update_id, payload=payload, state=state,
                        owner=new_owner, received_at=utcnow())
            for update_id, payload, state in taken.all()]
    await session.commit()
    return sorted(rows, key=lambda row: row.update_id)


async def forget_done_updates(session: AsyncSession, before: dt.datetime) -> None:
    """Drop updates done before `before`: Telegram redelivers only the last day."""
    await session.exec(delete(InboxUpdate).where(InboxUpdate.state == InboxState.DONE,
                                                 InboxUpdate.finished_at < before))
    await session.commit()


async def bot_states_of(session: AsyncSession, keys: list[tuple[str, str]]) -> dict[
        tuple[str, str], str]:
    """The stored JSON of the given (kind, key) rows that exist."""
    rows = await session.exec(select(BotState.kind, BotState.key, BotState.data)
                              .where(tuple_(BotState.kind, BotState.key).in_(keys)))
    return {(kind, key): data for kind, key, data in rows.all()}

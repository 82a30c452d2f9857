"""Reads and writes of suggested phrasings (bot/learning.py decides what they mean).

Beside bot/storage/records.py rather than in it: that module is past 700 lines, and these
two tables are read and written by the learning loop alone.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select, tuple_, update
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.storage.models import (
    Question,
    QuestionStatus,
    SignalKind,
    Suggestion,
    SuggestionSignal,
    SuggestionStatus,
    utcnow,
)
from bot.storage.records import _insert, storable

# 👎 reasons that say the answer served was not the one asked for (bot.handlers.feedback).
MISSED_REASONS = ("wrong", "other_question")


@dataclass(frozen=True)
class SignalRecord:
    """A question suggesting that its wording (grouped by `key`) means an FAQ entry."""

    entry_id: str
    key: str
    wording: str
    question_id: int
    person_id: int
    kind: SignalKind
    at: dt.datetime


@dataclass(frozen=True)
class SuggestedPhrasing:
    """A proposed wording with what speaks for it; askers are counted, never named."""

    suggestion: Suggestion
    count: int
    first_seen: dt.datetime
    last_seen: dt.datetime
    # How often each asker asked it, most first (3, 1: one asker three times, another once).
    per_asker: tuple[int, ...]
    kinds: dict[SignalKind, int] = field(default_factory=dict)

    @property
    def askers(self) -> int:
        return len(self.per_asker)


@dataclass(frozen=True)
class AskedQuestion:
    """What the search for rephrasings reads of a question."""

    id: int
    person_id: int
    chat_id: int
    text: str
    status: QuestionStatus
    entry_id: str | None
    asked_at: dt.datetime


async def record_signals(session: AsyncSession, signals: list[SignalRecord]) -> int:
    """Store signals, each question once per suggestion, opening the suggestions they
    name; how many were new."""
    if not signals:
        return 0
    wordings = {(s.entry_id, s.key): s for s in sorted(signals, key=lambda s: s.at)}
    table = Suggestion.__table__
    await session.exec(
        _insert(session, Suggestion).on_conflict_do_nothing(index_elements=["entry_id", "key"]),
        params=[{"entry_id": entry_id, "key": key, "wording": storable(s.wording),
                 "status": SuggestionStatus.PROPOSED, "created_at": s.at}
                for (entry_id, key), s in wordings.items()])
    ids = dict(((entry_id, key), suggestion_id) for suggestion_id, entry_id, key in (
        await session.exec(select(table.c.id, table.c.entry_id, table.c.key)
                           .where(tuple_(table.c.entry_id, table.c.key).in_(list(wordings))))
    ).all())
    result = await session.exec(
        _insert(session, SuggestionSignal)
        .on_conflict_do_nothing(index_elements=["suggestion_id", "question_id"]),
        params=[{"suggestion_id": ids[s.entry_id, s.key], "question_id": s.question_id,
                 "person_id": s.person_id, "kind": s.kind, "at": s.at} for s in signals])
    await session.commit()
    return max(result.rowcount, 0)


async def asked_since(session: AsyncSession, since: dt.datetime) -> list[AskedQuestion]:
    """Questions asked since `since`, each asker's in each chat together, in order."""
    rows = await session.exec(
        select(Question.id, Question.person_id, Question.chat_id, Question.text,
               Question.status, Question.entry_id, Question.asked_at)
        .where(Question.asked_at >= since)
        .order_by(Question.person_id, Question.chat_id, Question.asked_at, Question.id))
    return [AskedQuestion(*row) for row in rows.all()]


async def proposed_suggestions(session: AsyncSession) -> list[SuggestedPhrasing]:
    """The suggestions nobody has decided on, with their figures, most asked first."""
    suggestions = (await session.exec(
        select(Suggestion).where(Suggestion.status == SuggestionStatus.PROPOSED))).scalars().all()
    if not suggestions:
        return []
    signals = (await session.exec(
        select(SuggestionSignal.suggestion_id, SuggestionSignal.person_id,
               SuggestionSignal.kind, SuggestionSignal.at)
        .where(SuggestionSignal.suggestion_id.in_([s.id for s in suggestions])))).all()
    by_suggestion: dict[int, list[tuple[int, SignalKind, dt.datetime]]] = defaultdict(list)
    for suggestion_id, person_id, kind, at in signals:
        by_suggestion[suggestion_id].append((person_id, kind, at))
    listed = []
    for suggestion in suggestions:
        rows = by_suggestion.get(suggestion.id)
        if not rows:
            continue
        times = [at for _, _, at in rows]
        listed.append(SuggestedPhrasing(
            suggestion, len(rows), min(times), max(times),
            tuple(sorted(Counter(p for p, _, _ in rows).values(), reverse=True)),
            dict(Counter(kind for _, kind, _ in rows))))
    return sorted(listed, key=lambda s: (-s.count, -s.askers, s.suggestion.id))


async def decide_suggestion(session: AsyncSession, suggestion_id: int,
                            status: SuggestionStatus, by: int
                            ) -> tuple[Suggestion | None, bool]:
    """Accept or reject a proposed suggestion, once: the suggestion, and whether this call
    decided it (False: decided before, or it does not exist)."""
    decided = (await session.exec(
        update(Suggestion)
        .where(Suggestion.id == suggestion_id, Suggestion.status == SuggestionStatus.PROPOSED)
        .values(status=status, decided_by=by, decided_at=utcnow())
    )).rowcount == 1
    await session.commit()
    return await session.get(Suggestion, suggestion_id, populate_existing=True), decided


async def reopen_suggestion(session: AsyncSession, suggestion_id: int) -> None:
    """An acceptance that could not be written: proposed again."""
    await session.exec(update(Suggestion).where(Suggestion.id == suggestion_id)
                       .values(status=SuggestionStatus.PROPOSED, decided_by=None, decided_at=None))
    await session.commit()


async def labelled_traffic(session: AsyncSession) -> tuple[list[tuple[str, str]], list[str]]:
    """What users and admins said about real questions, for `maxbot fit --with-traffic`:
    (wording, entry) pairs that entry answers (accepted suggestions with the questions
    behind them, answers rated 👍), and the questions whose answer was rated 👎 as wrong or as
    another question."""
    accepted = await session.exec(
        select(Suggestion.wording, Suggestion.entry_id)
        .where(Suggestion.status == SuggestionStatus.ACCEPTED))
    asked = await session.exec(
        select(Question.text, Suggestion.entry_id)
        .join(SuggestionSignal, SuggestionSignal.question_id == Question.id)
        .join(Suggestion, Suggestion.id == SuggestionSignal.suggestion_id)
        .where(Suggestion.status == SuggestionStatus.ACCEPTED))
    liked = await session.exec(
        select(Question.text, Question.entry_id)
        .where(Question.feedback == 1, Question.status == QuestionStatus.ANSWERED,
               Question.entry_id.is_not(None)))
    missed = await session.exec(
        select(Question.text)
        .where(Question.feedback == -1, Question.feedback_reason.in_(MISSED_REASONS)))
    right = [*accepted.all(), *asked.all(), *liked.all()]
    return [(text, entry_id) for text, entry_id in right], list(missed.scalars().all())

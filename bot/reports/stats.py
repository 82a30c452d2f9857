"""Figures about a period: questions, answer rate, follow-ups, time to answer, open gaps.

Pure functions over records, shared by /stats in Telegram and `maxbot export`.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.answering import STATUSES
from bot.replies import KST
from bot.storage.models import FollowUpStatus, Question, QuestionStatus
from bot.storage.records import Disliked, FollowUpCase, tally_disliked
from index import KnowledgeIndex

# What counts as a question to answer: what the bot decided (bot.answering.STATUSES), not
# refusals for length or pace. (QuestionStatus fails here if a decision is not one of its.)
ASKED = tuple(QuestionStatus(status) for status in STATUSES)


@dataclass(frozen=True)
class DayFigures:
    day: dt.date
    questions: int
    answered: int
    unanswered: int
    off_topic: int = 0
    smalltalk: int = 0

    @property
    def answer_rate(self) -> float | None:
        """As the period's rate: answered among on-topic questions; None without any."""
        on_topic = self.answered + self.unanswered
        return self.answered / on_topic if on_topic else None


@dataclass(frozen=True)
class PeriodStats:
    since: dt.datetime | None
    until: dt.datetime | None
    questions: int
    answered: int
    unanswered: int
    off_topic: int
    smalltalk: int
    followups_opened: int
    followups_answered: int
    followups_closed: int
    followups_open: int
    median_hours_to_answer: float | None
    top_unanswered_terms: list[tuple[str, int]] = field(default_factory=list)
    # The entries whose answers were marked 👎 most in the period, and why.
    disliked: list[Disliked] = field(default_factory=list)

    @property
    def answer_rate(self) -> float:
        """Answered among the questions about our subject (off-topic and small talk left
        out)."""
        on_topic = self.answered + self.unanswered
        return self.answered / on_topic if on_topic else 0.0


def daily_figures(questions: Iterable[Question], first: dt.date, last: dt.date
                  ) -> list[DayFigures]:
    """Every Korean day from first to last, days without questions included."""
    per_day: dict[dt.date, Counter[QuestionStatus]] = {}
    for question in questions:
        if question.status in ASKED:
            day = question.asked_at.astimezone(KST).date()
            per_day.setdefault(day, Counter())[question.status] += 1
    days = []
    for n in range((last - first).days + 1):
        day = first + dt.timedelta(days=n)
        counts = per_day.get(day, Counter())
        days.append(DayFigures(day, sum(counts.values()), counts[QuestionStatus.ANSWERED],
                               counts[QuestionStatus.UNANSWERED],
                               counts[QuestionStatus.OFF_TOPIC],
                               counts[QuestionStatus.SMALLTALK]))
    return days


def period_stats(questions: list[Question], cases: list[FollowUpCase],
                 index: KnowledgeIndex | None, since: dt.datetime | None = None,
                 until: dt.datetime | None = None, top_terms: int = 10) -> PeriodStats:
    """The period's figures; the unanswered terms need the index (none without it)."""
    asked = [q for q in questions if q.status in ASKED]
    by_status = Counter(q.status for q in asked)
    hours = [
        (c.followup.answered_at - c.followup.created_at).total_seconds() / 3600
        for c in cases if c.followup.answered_at is not None
    ]
    terms: Counter[str] = Counter()
    for question in asked:
        if question.status == QuestionStatus.UNANSWERED and index is not None:
            query = index.parse(question.text)
            # The things asked about: nouns, not verbs or bare numbers, in the asker's words
            # (금리, not the 이자 that stood in for it in the search; apply, not its stem).
            terms.update({word for t, word, kind in zip(query.terms, query.written,
                                                        query.kinds, strict=True)
                          if kind == "noun" and not t.isdigit()})
    statuses = Counter(c.followup.status for c in cases)
    return PeriodStats(
        since=since, until=until, questions=len(asked),
        answered=by_status[QuestionStatus.ANSWERED],
        unanswered=by_status[QuestionStatus.UNANSWERED],
        off_topic=by_status[QuestionStatus.OFF_TOPIC],
        smalltalk=by_status[QuestionStatus.SMALLTALK],
        followups_opened=len(cases), followups_answered=statuses[FollowUpStatus.ANSWERED],
        followups_closed=statuses[FollowUpStatus.CLOSED],
        followups_open=statuses[FollowUpStatus.OPEN],
        median_hours_to_answer=statistics.median(hours) if hours else None,
        top_unanswered_terms=terms.most_common(top_terms),
        disliked=tally_disliked((q.entry_id, q.feedback_reason, 1) for q in asked
                                if q.feedback == -1 and q.entry_id),
    )

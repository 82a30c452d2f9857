"""`maxbot followups`: the secretariat's follow-ups as aligned text or JSON lines."""

from __future__ import annotations

import datetime as dt
import json
import sys
import unicodedata
from collections import Counter
from typing import TextIO

from sqlalchemy.exc import SQLAlchemyError

from bot.followups import asker_name, status_label
from bot.replies import label
from bot.reports.period import database_error, day_start, handle, kst, kst_text
from bot.settings import Settings
from bot.storage.database import Database, with_database
from bot.storage.models import FollowUpStatus
from bot.storage.records import FollowUpCase, followups_between


def followup_as_json(case: FollowUpCase) -> dict[str, object]:
    followup, question, person = case.followup, case.question, case.person

    def iso(when: dt.datetime | None) -> str | None:
        local = kst(when)
        return local.isoformat(timespec="seconds") if local else None

    return {
        "id": followup.id,
        "status": followup.status,
        "reason": followup.reason,
        "created_at": iso(followup.created_at),
        "asker_id": question.person_id,
        "asker_name": asker_name(case),
        "asker_username": person.username if person else None,
        "question_id": question.id,
        "question": question.text,
        "asked_at": iso(question.asked_at),
        "answer": followup.answer,
        "answered_at": iso(followup.answered_at),
        "closed_at": iso(followup.closed_at),
        "kb_gap": followup.kb_gap,
    }


def display_width(text: str) -> int:
    """Columns a terminal gives the text: Hangul and other wide characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - display_width(text))


def _one_line(text: str) -> str:
    """On one line, without control characters (an escape sequence in a question must not
    reach the terminal)."""
    return " ".join("".join(" " if unicodedata.category(c) == "Cc" else c
                            for c in text).split())


def words(kind: str, language: str = "ko", **context: object) -> str:
    """The listing's words, from followup_list.html.j2."""
    return label(kind, language, "followup_list", **context)


def format_followups(cases: list[FollowUpCase], language: str = "ko") -> str:
    """Aligned columns, one follow-up a line; its answer, if any, on the line below."""
    if not cases:
        return words("none", language)
    header = tuple(words(f"header:{key}", language)
                   for key in ("id", "status", "opened_at", "asker", "question"))
    gap = words("gap", language)
    rows = []
    for case in cases:
        followup = case.followup
        status = status_label(followup.status, language)
        if followup.kb_gap:
            status += " " + gap
        asker = " ".join(p for p in (asker_name(case), handle(case.person)) if p)
        rows.append((f"#{followup.id}", status, kst_text(followup.created_at), asker,
                     _one_line(case.question.text)))
    widths = [max(display_width(row[i]) for row in [header, *rows])
              for i in range(len(header) - 1)]
    indent = sum(widths) + 2 * len(widths)

    def line(row: tuple[str, ...]) -> str:
        return "".join(_pad(cell, w) + "  " for cell, w in zip(row, widths, strict=False)) + row[-1]

    answer = words("answer", language)
    lines = [line(header)]
    for case, row in zip(cases, rows, strict=True):
        lines.append(line(row))
        if case.followup.answer:
            lines.append(" " * indent + answer + " " + _one_line(case.followup.answer))
    counts = Counter(c.followup.status for c in cases)
    lines.append("")
    lines.append(words("total", language, total=len(cases),
                       counts=[(status_label(s, language), counts[s])
                               for s in FollowUpStatus if counts[s]],
                       gaps=sum(c.followup.kb_gap for c in cases)))
    return "\n".join(lines)


def list_followups(settings: Settings, status: FollowUpStatus | None = None,
                   since: dt.date | None = None,
                   as_json: bool = False, out: TextIO | None = None) -> int:
    out = out or sys.stdout

    async def work(database: Database) -> list[FollowUpCase]:
        async with database.session() as session:
            return await followups_between(session, day_start(since) if since else None,
                                           status=status)

    try:
        cases = with_database(settings.database_url, settings.spool_path, work)
    except (SQLAlchemyError, OSError) as exc:
        return database_error(settings, exc)
    if as_json:
        for case in cases:
            print(json.dumps(followup_as_json(case), ensure_ascii=False), file=out)
    else:
        print(format_followups(cases), file=out)
    return 0

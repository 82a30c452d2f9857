"""`maxbot export`: every question and follow-up of a period as CSV (UTF-8 with BOM, for
Excel), as an Excel workbook, or as a self-contained HTML report (figures, a daily chart in
inline SVG, open follow-ups, unanswered terms) rendered from bot/templates/report.html.j2 in the
words of bot/templates/<language>/_report.html.j2.
Days are Korean days; times are shown in KST. (`maxbot followups` is bot/reports/listing.py.)
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from bot.answering import STATUSES
from bot.followups import asker_name, question_label, reason_label, status_label
from bot.language import LANGUAGES
from bot.replies import _environment, label, render, to_plain_text
from bot.reports.charts import daily_chart
from bot.reports.period import (
    Period,
    database_error,
    day_start,
    handle,
    kst,
    read_period,
)
from bot.reports.stats import PeriodStats, daily_figures, period_stats
from bot.settings import Settings
from bot.storage.database import with_database
from bot.storage.models import FollowUpStatus, Person, QuestionStatus, utcnow
from index import KnowledgeBase

# Cells starting with these are formulas to Excel; user text must never run as one.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# --- maxbot export: rows for CSV and Excel --------------------------------------------------


# The columns by key and Excel width; their headers are in export_labels.html.j2.
QUESTION_COLUMNS = (
    ("question_id", 10), ("asked_at", 17), ("asker", 14), ("username", 18),
    ("question", 60), ("outcome", 12), ("entry", 40), ("feedback", 10),
    ("followup_id", 10), ("followup_status", 11), ("answer", 60), ("answered_at", 17),
)
FOLLOWUP_COLUMNS = (
    ("followup_id", 10), ("status", 11), ("opened_at", 17), ("reason", 12), ("asker", 14),
    ("username", 18), ("question", 60), ("answer", 60), ("answered_at", 17),
    ("closed_at", 17), ("kb_gap", 14), ("question_id", 10),
)
# Which columns hold moments (Excel gets real dates there) and long text (wrapped).
_MOMENTS = {"asked_at", "answered_at", "opened_at", "closed_at"}
_LONG_TEXT = {"question", "answer", "entry"}


def words(kind: str, language: str = "ko") -> str:
    """A header, sheet name or summary row of the export, from export_labels.html.j2."""
    return label(kind, language, "export_labels")


def column_headers(columns: tuple[tuple[str, int], ...], language: str = "ko") -> list[str]:
    return [words(f"column:{key}", language) for key, _ in columns]


def _username(person: Person | None) -> str:
    # Without the "@": a cell starting with it is a formula to Excel.
    return person.username if person and person.username else ""


def _feedback(value: int | None) -> str:
    return {1: "👍", -1: "👎"}.get(value, "") if value is not None else ""


def question_rows(period: Period, entry_questions: Mapping[str, str], language: str = "ko"
                  ) -> list[list[object]]:
    """One row per question of the period, with its follow-up's columns joined. The FAQ
    entry served is shown by its question (`entry_questions`, by id), as the asker saw it; an
    entry no longer in the knowledge base by its id."""
    rows: list[list[object]] = []
    for question in period.questions:
        person = period.people.get(question.person_id)
        case = period.case_of_question.get(question.id)
        followup = case.followup if case else None
        name = (" ".join(p for p in (person.first_name, person.last_name) if p) if person
                else "") or str(question.person_id)
        rows.append([
            question.id, kst(question.asked_at), name, _username(person), question.text,
            question_label(question.status, language),
            entry_questions.get(question.entry_id, question.entry_id or "")
            if question.entry_id else "",
            _feedback(question.feedback),
            followup.id if followup else "",
            status_label(followup.status, language) if followup else "",
            (followup.answer or "") if followup else "",
            kst(followup.answered_at) if followup else None,
        ])
    return rows


def followup_rows(period: Period, language: str = "ko") -> list[list[object]]:
    gap = words("yes", language)
    rows: list[list[object]] = []
    for case in period.cases:
        followup = case.followup
        rows.append([
            followup.id, status_label(followup.status, language),
            kst(followup.created_at), reason_label(followup.reason, language),
            asker_name(case), _username(case.person), case.question.text, followup.answer or "",
            kst(followup.answered_at), kst(followup.closed_at),
            gap if followup.kb_gap else "", case.question.id,
        ])
    return rows


def _csv_cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value  # shown as text by Excel, never evaluated
    return value


def to_csv(period: Period, entry_questions: Mapping[str, str], language: str = "ko") -> bytes:
    """UTF-8 with a byte order mark, so that Excel in Korean opens it as UTF-8."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(column_headers(QUESTION_COLUMNS, language))
    for row in question_rows(period, entry_questions, language):
        writer.writerow([_csv_cell(v) for v in row])
    return buffer.getvalue().encode("utf-8-sig")


def duration_text(hours: float | None, language: str = "ko") -> str:
    """A span as /stats and the report show it: minutes under an hour, else hours."""
    lang = "en" if language == "en" else "ko"
    macros = _environment().get_template(f"{lang}/_duration.html.j2").module
    return str(macros.duration(hours))


def summary_rows(period: Period, stats: PeriodStats, now: dt.datetime, language: str = "ko"
                 ) -> list[tuple[str, object]]:
    """The summary sheet: the report's totals, label and value; a value of None heads a section.
    What the bot decided is counted by kind, so that questions sent the wrong way (an
    on-topic question taken for small talk) show in their kind's count."""
    refused = sum(1 for q in period.questions if q.status not in STATUSES)
    decided = {"answered": stats.answered, "unanswered": stats.unanswered,
               "off_topic": stats.off_topic, "smalltalk": stats.smalltalk}
    on_topic = stats.answered + stats.unanswered

    def row(kind: str) -> str:
        return words(f"summary:{kind}", language)

    # A kind's count is indented under its section's total.
    return [
        (row("period"), f"{period.first_day:%Y.%m.%d.} – {period.last_day:%Y.%m.%d.}"),
        (row("written"), kst(now)),
        (row("decided"), None),
        (row("questions"), stats.questions),
        *((f"  {question_label(status, language)}", decided[status]) for status in STATUSES),
        (row("answer_rate"), stats.answer_rate if on_topic else "-"),
        (row("refused"), refused),
        (row("followups"), None),
        (row("opened"), stats.followups_opened),
        *((f"  {status_label(status, language)}", count) for status, count in (
            (FollowUpStatus.ANSWERED, stats.followups_answered),
            (FollowUpStatus.CLOSED, stats.followups_closed),
            (FollowUpStatus.OPEN, stats.followups_open))),
        (row("median"), duration_text(stats.median_hours_to_answer, language)),
    ]


def to_xlsx(period: Period, stats: PeriodStats, entry_questions: Mapping[str, str],
            now: dt.datetime | None = None, language: str = "ko") -> bytes:
    """Three sheets, the summary (the totals), the questions and the follow-ups: bold
    headers, set widths, real dates, filters."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    workbook = Workbook()
    summary = workbook.active
    summary.title = words("sheet:summary", language)
    for name, value in summary_rows(period, stats, now or utcnow(), language):
        summary.append([name, _xlsx_value(value)])
        label_cell, value_cell = summary[summary.max_row]
        if value is None:
            label_cell.font = Font(bold=True)
        elif isinstance(value, float):
            value_cell.number_format = "0%"
        elif isinstance(value, dt.datetime):
            value_cell.number_format = "yyyy-mm-dd hh:mm"
        value_cell.alignment = Alignment(horizontal="right")
    summary.column_dimensions["A"].width = 34
    summary.column_dimensions["B"].width = 26
    _table(workbook.create_sheet(words("sheet:questions", language)), QUESTION_COLUMNS,
           question_rows(period, entry_questions, language), language)
    _table(workbook.create_sheet(words("sheet:followups", language)), FOLLOWUP_COLUMNS,
           followup_rows(period, language), language)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _xlsx_value(value: object) -> object:
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)  # Excel has no time zones; the moment is KST
    if isinstance(value, str):
        return ILLEGAL_CHARACTERS_RE.sub("", value)
    return value


def _table(sheet, columns: tuple[tuple[str, int], ...], rows: list[list[object]],
           language: str) -> None:
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    sheet.append(column_headers(columns, language))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(vertical="center")
    for row_number, row in enumerate(rows, start=2):
        for column, ((key, _), value) in enumerate(zip(columns, row, strict=True), start=1):
            cell = sheet.cell(row_number, column)
            cell.value = _xlsx_value(value)
            if isinstance(value, dt.datetime):
                cell.number_format = "yyyy-mm-dd hh:mm"
            elif isinstance(value, str):
                cell.data_type = "s"  # user text starting with "=" stays text
            if key in _LONG_TEXT:
                cell.alignment = Alignment(wrap_text=True, vertical="top")
            elif key in _MOMENTS:
                cell.alignment = Alignment(vertical="top")
    for column, (_, width) in enumerate(columns, start=1):
        sheet.column_dimensions[get_column_letter(column)].width = width
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = sheet.dimensions


# --- maxbot export: the HTML report ---------------------------------------------------------


@dataclass(frozen=True)
class OpenRow:
    id: int
    asked_at: dt.datetime
    asker: str
    question: str
    days_open: int


def open_rows(period: Period, now: dt.datetime) -> list[OpenRow]:
    """The period's follow-ups still open, oldest first, with how many days they have waited."""
    cases = sorted((c for c in period.cases if c.followup.status == FollowUpStatus.OPEN),
                   key=lambda c: (c.followup.created_at, c.followup.id))
    return [OpenRow(c.followup.id, c.question.asked_at,
                    " ".join(p for p in (asker_name(c), handle(c.person)) if p),
                    c.question.text, (now - c.followup.created_at).days)
            for c in cases]


@dataclass(frozen=True)
class DecidedRow:
    """A message the bot did not take as a question about our subject (off topic, small
    talk): listed, so that a question it misrouted is seen."""

    asked_at: dt.datetime
    status: QuestionStatus
    text: str


# How many such messages the report lists, newest first.
DECIDED_SHOWN = 30


def decided_rows(period: Period) -> list[DecidedRow]:
    """The period's messages the bot decided were off topic or small talk, newest first."""
    return [DecidedRow(q.asked_at, q.status, q.text)
            for q in sorted(period.questions, key=lambda q: (q.asked_at, q.id),
                            reverse=True)
            if q.status in (QuestionStatus.OFF_TOPIC, QuestionStatus.SMALLTALK)]


def to_html(period: Period, stats: PeriodStats, now: dt.datetime | None = None,
            language: str = "ko") -> bytes:
    """The report as one HTML page: report.html.j2 draws it, in the words of `language`."""
    now = now or utcnow()
    days = daily_figures(period.questions, period.first_day, period.last_day)
    rows = open_rows(period, now)
    terms = stats.top_unanswered_terms
    decided = decided_rows(period)
    html = _environment().get_template("report.html.j2").render(
        language=language if language in LANGUAGES else "ko", stats=stats,
        first_day=period.first_day, last_day=period.last_day, now=now,
        chart=daily_chart(days), open_rows=rows,
        other_open=max(0, period.open_total - len(rows)), terms=terms,
        most_frequent=max((n for _, n in terms), default=1),
        statuses=STATUSES, decided_rows=decided[:DECIDED_SHOWN],
        decided_more=max(0, len(decided) - DECIDED_SHOWN))
    return html.encode("utf-8")


# --- maxbot export --------------------------------------------------------------------------


def _knowledge_for_rows(settings: Settings) -> KnowledgeBase | None:
    """The knowledge base, for the questions of the FAQ entries served; without it (errors
    in it) the rows name the entries by id, and the export goes on."""
    from bot.knowledge import load_knowledge
    from index import KnowledgeInvalid

    try:
        return load_knowledge(settings.knowledge_dir)
    except KnowledgeInvalid:
        print(f"The knowledge base in {settings.knowledge_dir} has errors (maxbot check lists "
              "them); FAQ entries are shown by their id.", file=sys.stderr)
        return None


def export(settings: Settings, fmt: str, since: dt.date, until: dt.date | None, out: Path,
           language: str = "ko") -> int:
    """Write the period from `since` to `until` (both Korean days, included; default today),
    in the words of `language`."""
    start = day_start(since)
    end = day_start(until + dt.timedelta(days=1)) if until else utcnow()
    if end <= start:
        print("--until must not be before --since", file=sys.stderr)
        return 2
    knowledge = None
    index = None
    if fmt == "html":
        from bot.knowledge import load_index
        from index import KnowledgeInvalid

        try:
            index = load_index(settings.knowledge_dir, settings.analyzer, settings.cache_dir)
        except KnowledgeInvalid:
            print(f"The knowledge base in {settings.knowledge_dir} has errors "
                  "(maxbot check lists them); the report needs it for unanswered terms.",
                  file=sys.stderr)
            return 1
        knowledge = index.knowledge
    else:
        knowledge = _knowledge_for_rows(settings)
    entry_questions = ({entry.id: entry.question for entry in knowledge.entries}
                       if knowledge else {})
    try:
        period = with_database(settings.database_url, settings.spool_path,
                               lambda database: read_period(database, start, end))
    except (SQLAlchemyError, OSError) as exc:
        return database_error(settings, exc)
    if fmt == "csv":
        data = to_csv(period, entry_questions, language)
    else:
        stats = period_stats(period.questions, period.cases, index, start, end)
        data = (to_xlsx(period, stats, entry_questions, language=language) if fmt == "xlsx"
                else to_html(period, stats, language=language))
    try:
        out.write_bytes(data)
    except OSError as exc:
        print(f"Could not write {out}: {exc}", file=sys.stderr)
        return 1
    print(to_plain_text(render("export_written", language, out=out, first_day=period.first_day,
                               last_day=period.last_day, questions=len(period.questions),
                               followups=len(period.cases))))
    return 0

"""`maxbot export`: every question and follow-up of a period as CSV (UTF-8 with BOM, for
Excel), as an Excel workbook, or as a self-contained HTML report (figures, a daily chart in
inline SVG, open follow-ups, unanswered terms) rendered from bot/templates/report.html.j2.
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
from bot.replies import _environment
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


QUESTION_COLUMNS = (
    ("질문 번호", 10), ("질문 시각(KST)", 17), ("질문자", 14), ("텔레그램 사용자명", 18),
    ("질문", 60), ("처리", 12), ("답변한 FAQ", 40), ("사용자 평가", 10),
    ("문의 번호", 10), ("문의 상태", 11), ("사무국 답변", 60), ("답변 시각(KST)", 17),
)
FOLLOWUP_COLUMNS = (
    ("문의 번호", 10), ("상태", 11), ("접수 시각(KST)", 17), ("사유", 12), ("질문자", 14),
    ("텔레그램 사용자명", 18), ("질문", 60), ("사무국 답변", 60), ("답변 시각(KST)", 17),
    ("종료 시각(KST)", 17), ("지식베이스 공백", 14), ("질문 번호", 10),
)
# Which columns hold moments (Excel gets real dates there) and long text (wrapped).
_MOMENTS = {"질문 시각(KST)", "답변 시각(KST)", "접수 시각(KST)", "종료 시각(KST)"}
_LONG_TEXT = {"질문", "사무국 답변", "답변한 FAQ"}


def _username(person: Person | None) -> str:
    # Without the "@": a cell starting with it is a formula to Excel.
    return person.username if person and person.username else ""


def _feedback(value: int | None) -> str:
    return {1: "👍", -1: "👎"}.get(value, "") if value is not None else ""


def question_rows(period: Period, entry_questions: Mapping[str, str]
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
            question_label(question.status),
            entry_questions.get(question.entry_id, question.entry_id or "")
            if question.entry_id else "",
            _feedback(question.feedback),
            followup.id if followup else "",
            status_label(followup.status) if followup else "",
            (followup.answer or "") if followup else "",
            kst(followup.answered_at) if followup else None,
        ])
    return rows


def followup_rows(period: Period) -> list[list[object]]:
    rows: list[list[object]] = []
    for case in period.cases:
        followup = case.followup
        rows.append([
            followup.id, status_label(followup.status),
            kst(followup.created_at), reason_label(followup.reason),
            asker_name(case), _username(case.person), case.question.text, followup.answer or "",
            kst(followup.answered_at), kst(followup.closed_at),
            "예" if followup.kb_gap else "", case.question.id,
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


def to_csv(period: Period, entry_questions: Mapping[str, str]) -> bytes:
    """UTF-8 with a byte order mark, so that Excel in Korean opens it as UTF-8."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([name for name, _ in QUESTION_COLUMNS])
    for row in question_rows(period, entry_questions):
        writer.writerow([_csv_cell(v) for v in row])
    return buffer.getvalue().encode("utf-8-sig")


def duration_text(hours: float | None) -> str:
    """A span as /stats and the report show it: minutes under an hour, else hours."""
    macros = _environment().get_template("ko/_duration.html.j2").module
    return str(macros.duration(hours))


def summary_rows(period: Period, stats: PeriodStats, now: dt.datetime
                 ) -> list[tuple[str, object]]:
    """The 요약 sheet: the report's totals, label and value; a value of None heads a section.
    What the bot decided is counted by kind, so that questions sent the wrong way (an
    on-topic question taken for small talk) show in their kind's count."""
    refused = sum(1 for q in period.questions if q.status not in STATUSES)
    decided = {"answered": stats.answered, "unanswered": stats.unanswered,
               "off_topic": stats.off_topic, "smalltalk": stats.smalltalk}
    on_topic = stats.answered + stats.unanswered
    return [
        ("기간 (한국 시간)", f"{period.first_day:%Y.%m.%d.} – {period.last_day:%Y.%m.%d.}"),
        ("작성 시각 (KST)", kst(now)),
        ("봇의 판단", None),
        ("질문", stats.questions),
        *((f"  {question_label(status)}", decided[status]) for status in STATUSES),
        ("답변율 (주제 밖·일상 대화 제외)", stats.answer_rate if on_topic else "-"),
        ("길이·속도 제한으로 거절한 메시지", refused),
        ("사무국 문의 (기간에 접수)", None),
        ("접수", stats.followups_opened),
        *((f"  {status_label(status)}", count) for status, count in (
            (FollowUpStatus.ANSWERED, stats.followups_answered),
            (FollowUpStatus.CLOSED, stats.followups_closed),
            (FollowUpStatus.OPEN, stats.followups_open))),
        ("답변까지 걸린 시간 (중앙값)", duration_text(stats.median_hours_to_answer)),
    ]


def to_xlsx(period: Period, stats: PeriodStats, entry_questions: Mapping[str, str],
            now: dt.datetime | None = None) -> bytes:
    """Three sheets, 요약 (the totals), 질문 and 사무국 문의: bold headers, set widths, real
    dates, filters."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    workbook = Workbook()
    summary = workbook.active
    summary.title = "요약"
    for label, value in summary_rows(period, stats, now or utcnow()):
        summary.append([label, _xlsx_value(value)])
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
    _table(workbook.create_sheet("질문"), QUESTION_COLUMNS,
           question_rows(period, entry_questions))
    _table(workbook.create_sheet("사무국 문의"), FOLLOWUP_COLUMNS, followup_rows(period))
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


def _table(sheet, columns: tuple[tuple[str, int], ...], rows: list[list[object]]) -> None:
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    sheet.append([name for name, _ in columns])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(vertical="center")
    for row_number, row in enumerate(rows, start=2):
        for column, ((name, _), value) in enumerate(zip(columns, row, strict=True), start=1):
            cell = sheet.cell(row_number, column)
            cell.value = _xlsx_value(value)
            if isinstance(value, dt.datetime):
                cell.number_format = "yyyy-mm-dd hh:mm"
            elif isinstance(value, str):
                cell.data_type = "s"  # user text starting with "=" stays text
            if name in _LONG_TEXT:
                cell.alignment = Alignment(wrap_text=True, vertical="top")
            elif name in _MOMENTS:
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


def to_html(period: Period, stats: PeriodStats, now: dt.datetime | None = None) -> bytes:
    now = now or utcnow()
    days = daily_figures(period.questions, period.first_day, period.last_day)
    rows = open_rows(period, now)
    terms = stats.top_unanswered_terms
    decided = decided_rows(period)
    html = _environment().get_template("report.html.j2").render(
        stats=stats, first_day=period.first_day, last_day=period.last_day, now=now,
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


def export(settings: Settings, fmt: str, since: dt.date, until: dt.date | None, out: Path) -> int:
    """Write the period from `since` to `until` (both Korean days, included; default today)."""
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
            index = load_index(settings.knowledge_dir, settings.analyzer)
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
        data = to_csv(period, entry_questions)
    else:
        stats = period_stats(period.questions, period.cases, index, start, end)
        data = (to_xlsx(period, stats, entry_questions) if fmt == "xlsx"
                else to_html(period, stats))
    try:
        out.write_bytes(data)
    except OSError as exc:
        print(f"Could not write {out}: {exc}", file=sys.stderr)
        return 1
    print(f"{out}: {period.first_day:%Y-%m-%d}–{period.last_day:%Y-%m-%d} (KST), "
          f"질문 {len(period.questions)}건, 사무국 문의 {len(period.cases)}건")
    return 0

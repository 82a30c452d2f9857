"""The secretariat's reports from the command line: `maxbot followups` and `maxbot export`.

`followups` lists follow-ups as aligned text or JSON lines. `export` writes every question and
follow-up of a period as CSV (UTF-8 with BOM, for Excel), as an Excel workbook, or as a
self-contained HTML report (figures, a daily chart in inline SVG, open follow-ups, unanswered
terms) rendered from bot/templates/report.html.j2. Days are Korean days; times are shown in KST.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import sys
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from sqlalchemy.exc import SQLAlchemyError

from bot.followups import STATUS_LABELS, asker_name
from bot.replies import KST, _environment
from bot.reports.stats import DayFigures, PeriodStats, daily_figures, period_stats
from bot.settings import Settings
from bot.storage.database import Database, safe_url, with_database
from bot.storage.models import Person, Question, utcnow
from bot.storage.records import FollowUpCase, followups_between, open_followups, questions_between

QUESTION_LABELS = {"answered": "답변", "unanswered": "미답변", "off_topic": "주제 밖",
                   "smalltalk": "일상 대화",
                   "too_long": "너무 긴 질문", "limited": "질문 속도 제한",
                   "consultation": "상담 요청"}
REASON_LABELS = {"unanswered": "미답변 질문", "feedback": "답변에 👎",
                 "consultation": "지원 방식 확인 상담 요청"}
# Cells starting with these are formulas to Excel; user text must never run as one.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# --- time -----------------------------------------------------------------------------------


def aware(when: dt.datetime) -> dt.datetime:
    """A stored moment as an aware datetime; naive values (from SQLite) are UTC."""
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def kst(when: dt.datetime | None) -> dt.datetime | None:
    return aware(when).astimezone(KST) if when is not None else None


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


async def _read_period(database: Database, since: dt.datetime, until: dt.datetime) -> Period:
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
    cases = [c for c in later if aware(c.followup.created_at) < until]
    return Period(since, until, questions, cases, {c.question.id: c for c in later}, people,
                  open_total)


def _database_error(settings: Settings, exc: Exception) -> int:
    print(f"The database ({safe_url(settings.database_url)}) could not be read: "
          f"{type(exc).__name__}: {exc}", file=sys.stderr)
    return 1


def _handle(person: Person | None) -> str:
    return f"@{person.username}" if person and person.username else ""


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


def format_followups(cases: list[FollowUpCase]) -> str:
    """Aligned columns, one follow-up a line; its answer, if any, on the line below."""
    if not cases:
        return "해당하는 문의가 없습니다."
    header = ("번호", "상태", "접수(KST)", "질문자", "질문")
    rows = []
    for case in cases:
        followup = case.followup
        status = STATUS_LABELS.get(followup.status, followup.status)
        if followup.kb_gap:
            status += " ·공백"
        asker = " ".join(p for p in (asker_name(case), _handle(case.person)) if p)
        rows.append((f"#{followup.id}", status, kst_text(followup.created_at), asker,
                     _one_line(case.question.text)))
    widths = [max(display_width(row[i]) for row in [header, *rows])
              for i in range(len(header) - 1)]
    indent = sum(widths) + 2 * len(widths)

    def line(row: tuple[str, ...]) -> str:
        return "".join(_pad(cell, w) + "  " for cell, w in zip(row, widths, strict=False)) + row[-1]

    lines = [line(header)]
    for case, row in zip(cases, rows, strict=True):
        lines.append(line(row))
        if case.followup.answer:
            lines.append(" " * indent + "↳ 답변: " + _one_line(case.followup.answer))
    counts = Counter(c.followup.status for c in cases)
    summary = " · ".join(f"{label} {counts[s]}" for s, label in STATUS_LABELS.items()
                         if counts[s])
    gaps = sum(c.followup.kb_gap for c in cases)
    lines.append("")
    lines.append(f"{len(cases)}건 ({summary}" + (f", 지식베이스 공백 {gaps}" if gaps else "") + ")")
    return "\n".join(lines)


def list_followups(settings: Settings, status: str | None = None, since: dt.date | None = None,
                   as_json: bool = False, out: TextIO | None = None) -> int:
    out = out or sys.stdout

    async def work(database: Database) -> list[FollowUpCase]:
        async with database.session() as session:
            return await followups_between(session, day_start(since) if since else None,
                                           status=status)

    try:
        cases = with_database(settings.database_url, settings.spool_path, work)
    except (SQLAlchemyError, OSError) as exc:
        return _database_error(settings, exc)
    if as_json:
        for case in cases:
            print(json.dumps(followup_as_json(case), ensure_ascii=False), file=out)
    else:
        print(format_followups(cases), file=out)
    return 0


# --- maxbot export: rows for CSV and Excel --------------------------------------------------


QUESTION_COLUMNS = (
    ("질문 번호", 10), ("질문 시각(KST)", 17), ("질문자", 14), ("텔레그램 사용자명", 18),
    ("질문", 60), ("처리", 12), ("FAQ 항목", 18), ("점수", 8), ("사용자 평가", 10),
    ("문의 번호", 10), ("문의 상태", 11), ("사무국 답변", 60), ("답변 시각(KST)", 17),
)
FOLLOWUP_COLUMNS = (
    ("문의 번호", 10), ("상태", 11), ("접수 시각(KST)", 17), ("사유", 12), ("질문자", 14),
    ("텔레그램 사용자명", 18), ("질문", 60), ("사무국 답변", 60), ("답변 시각(KST)", 17),
    ("종료 시각(KST)", 17), ("지식베이스 공백", 14), ("질문 번호", 10),
)
# Which columns hold moments (Excel gets real dates there) and long text (wrapped).
_MOMENTS = {"질문 시각(KST)", "답변 시각(KST)", "접수 시각(KST)", "종료 시각(KST)"}
_LONG_TEXT = {"질문", "사무국 답변"}


def _username(person: Person | None) -> str:
    # Without the "@": a cell starting with it is a formula to Excel.
    return person.username if person and person.username else ""


def _feedback(value: int | None) -> str:
    return {1: "👍", -1: "👎"}.get(value, "") if value is not None else ""


def question_rows(period: Period) -> list[list[object]]:
    """One row per question of the period, with its follow-up's columns joined."""
    rows: list[list[object]] = []
    for question in period.questions:
        person = period.people.get(question.person_id)
        case = period.case_of_question.get(question.id)
        followup = case.followup if case else None
        name = (" ".join(p for p in (person.first_name, person.last_name) if p) if person
                else "") or str(question.person_id)
        rows.append([
            question.id, kst(question.asked_at), name, _username(person), question.text,
            QUESTION_LABELS.get(question.status, question.status), question.entry_id or "",
            round(question.score, 3) if question.score is not None else "",
            _feedback(question.feedback),
            followup.id if followup else "",
            STATUS_LABELS.get(followup.status, followup.status) if followup else "",
            (followup.answer or "") if followup else "",
            kst(followup.answered_at) if followup else None,
        ])
    return rows


def followup_rows(period: Period) -> list[list[object]]:
    rows: list[list[object]] = []
    for case in period.cases:
        followup = case.followup
        rows.append([
            followup.id, STATUS_LABELS.get(followup.status, followup.status),
            kst(followup.created_at), REASON_LABELS.get(followup.reason, followup.reason),
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


def to_csv(period: Period) -> bytes:
    """UTF-8 with a byte order mark, so that Excel in Korean opens it as UTF-8."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([name for name, _ in QUESTION_COLUMNS])
    for row in question_rows(period):
        writer.writerow([_csv_cell(v) for v in row])
    return buffer.getvalue().encode("utf-8-sig")


def to_xlsx(period: Period) -> bytes:
    """Two sheets, 질문 and 사무국 문의: bold header, set widths, real dates, filters."""
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    workbook = Workbook()
    sheets = ((workbook.active, "질문", QUESTION_COLUMNS, question_rows(period)),
              (None, "사무국 문의", FOLLOWUP_COLUMNS, followup_rows(period)))
    for sheet, title, columns, rows in sheets:
        sheet = sheet or workbook.create_sheet()
        sheet.title = title
        sheet.append([name for name, _ in columns])
        for cell in sheet[1]:
            cell.font = Font(bold=True)
            cell.alignment = Alignment(vertical="center")
        for row_number, row in enumerate(rows, start=2):
            for column, ((name, _), value) in enumerate(zip(columns, row, strict=True), start=1):
                cell = sheet.cell(row_number, column)
                if isinstance(value, dt.datetime):
                    cell.value = value.replace(tzinfo=None)  # Excel has no time zones; KST
                    cell.number_format = "yyyy-mm-dd hh:mm"
                elif isinstance(value, str):
                    cell.value = ILLEGAL_CHARACTERS_RE.sub("", value)
                    cell.data_type = "s"  # user text starting with "=" stays text
                else:
                    cell.value = value
                if name in _LONG_TEXT:
                    cell.alignment = Alignment(wrap_text=True, vertical="top")
                elif name in _MOMENTS:
                    cell.alignment = Alignment(vertical="top")
        for column, (_, width) in enumerate(columns, start=1):
            sheet.column_dimensions[get_column_letter(column)].width = width
        sheet.freeze_panes = "A2"
        sheet.auto_filter.ref = sheet.dimensions
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


# --- maxbot export: the HTML report ---------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str


@dataclass(frozen=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True)
class Chart:
    """The daily chart's geometry; the template draws it as SVG."""

    width: int
    height: int
    left: float
    right: float
    top: float
    bottom: float
    bars: list[Bar]
    # Runs of consecutive days with an answer rate: polyline points, and the single points.
    rate_lines: list[str]
    rate_points: list[tuple[float, float]]
    count_ticks: list[Tick]
    rate_ticks: list[Tick]
    day_ticks: list[Tick]


def _nice_scale(largest: int) -> tuple[int, int]:
    """A top for the count axis and its step: 1, 2 or 5 times a power of ten, about 5 ticks."""
    if largest <= 0:
        return 1, 1
    raw = largest / 5
    power = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return math.ceil(largest / step) * step, step


WEEKDAYS = "월화수목금토일"


def daily_chart(days: list[DayFigures], width: int = 960, height: int = 320) -> Chart:
    left, right, top, bottom = 56.0, width - 56.0, 48.0, height - 44.0
    plot_w, plot_h = right - left, bottom - top
    slot = plot_w / max(len(days), 1)
    bar_w = min(slot * 0.7, 48.0)
    top_count, step = _nice_scale(max((d.questions for d in days), default=0))

    def x_of(i: int) -> float:
        return left + slot * (i + 0.5)

    bars, runs, run = [], [], []
    for i, day in enumerate(days):
        h = plot_h * day.questions / top_count
        rate = day.answer_rate
        rate_text = f"{rate * 100:.0f}%" if rate is not None else "-"
        bars.append(Bar(round(x_of(i) - bar_w / 2, 2), round(bottom - h, 2), round(bar_w, 2),
                        round(h, 2), f"{day.day:%Y.%m.%d.} ({WEEKDAYS[day.day.weekday()]}) "
                        f"질문 {day.questions}건 · 답변율 {rate_text}"))
        if rate is None:
            if run:
                runs.append(run)
            run = []
        else:
            run.append((round(x_of(i), 2), round(bottom - plot_h * rate, 2)))
    if run:
        runs.append(run)
    lines = [" ".join(f"{x},{y}" for x, y in r) for r in runs if len(r) > 1]
    points = [p for r in runs for p in r] if len(days) <= 31 else [r[0] for r in runs
                                                                   if len(r) == 1]
    count_ticks = [Tick(round(bottom - plot_h * v / top_count, 2), str(v))
                   for v in range(0, top_count + 1, step)]
    rate_ticks = [Tick(round(bottom - plot_h * v / 100, 2), f"{v}%") for v in (0, 25, 50, 75, 100)]
    every = max(1, math.ceil(len(days) / 12))
    day_ticks = [Tick(round(x_of(i), 2),
                      f"{d.day.month}.{d.day.day}" + (f"({WEEKDAYS[d.day.weekday()]})"
                                                      if len(days) <= 14 else ""))
                 for i, d in enumerate(days) if i % every == 0]
    return Chart(width, height, left, right, top, bottom, bars, lines, points, count_ticks,
                 rate_ticks, day_ticks)


@dataclass(frozen=True)
class OpenRow:
    id: int
    asked_at: dt.datetime
    asker: str
    question: str
    days_open: int


def open_rows(period: Period, now: dt.datetime) -> list[OpenRow]:
    """The period's follow-ups still open, oldest first, with how many days they have waited."""
    cases = sorted((c for c in period.cases if c.followup.status == "open"),
                   key=lambda c: (aware(c.followup.created_at), c.followup.id))
    return [OpenRow(c.followup.id, c.question.asked_at,
                    " ".join(p for p in (asker_name(c), _handle(c.person)) if p),
                    c.question.text, (now - aware(c.followup.created_at)).days)
            for c in cases]


def to_html(period: Period, stats: PeriodStats, now: dt.datetime | None = None) -> bytes:
    now = now or utcnow()
    days = daily_figures(period.questions, period.first_day, period.last_day)
    rows = open_rows(period, now)
    terms = stats.top_unanswered_terms
    html = _environment().get_template("report.html.j2").render(
        stats=stats, first_day=period.first_day, last_day=period.last_day, now=now,
        chart=daily_chart(days), open_rows=rows,
        other_open=max(0, period.open_total - len(rows)), terms=terms,
        most_frequent=max((n for _, n in terms), default=1))
    return html.encode("utf-8")


# --- maxbot export --------------------------------------------------------------------------


def export(settings: Settings, fmt: str, since: dt.date, until: dt.date | None, out: Path) -> int:
    """Write the period from `since` to `until` (both Korean days, included; default today)."""
    start = day_start(since)
    end = day_start(until + dt.timedelta(days=1)) if until else utcnow()
    if end <= start:
        print("--until must not be before --since", file=sys.stderr)
        return 2
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
    try:
        period = with_database(settings.database_url, settings.spool_path,
                               lambda database: _read_period(database, start, end))
    except (SQLAlchemyError, OSError) as exc:
        return _database_error(settings, exc)
    if fmt == "csv":
        data = to_csv(period)
    elif fmt == "xlsx":
        data = to_xlsx(period)
    else:
        stats = period_stats(period.questions, period.cases, index, start, end)
        data = to_html(period, stats)
    try:
        out.write_bytes(data)
    except OSError as exc:
        print(f"Could not write {out}: {exc}", file=sys.stderr)
        return 1
    print(f"{out}: {period.first_day:%Y-%m-%d}–{period.last_day:%Y-%m-%d} (KST), "
          f"질문 {len(period.questions)}건, 사무국 문의 {len(period.cases)}건")
    return 0

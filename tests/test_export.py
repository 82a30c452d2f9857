"""The secretariat's command-line reports: `maxbot followups` and `maxbot export`."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import re
import struct
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from bot import cli
from bot.replies import KST
from bot.storage.database import Database, upgrade_schema
from bot.storage.models import FollowUp
from bot.storage.records import (
    Asker,
    QuestionRecord,
    close_followup,
    record_answer,
    record_question,
)
from tests.conftest import write_knowledge

CHROMIUM = Path("/usr/bin/chromium")
MEMBER = 7001  # the secretariat member who answers and closes

LEE = Asker(7101, "이대표", username="ceo_lee")
KIM = Asker(7102, "김철수", "박")
CHOI = Asker(7103, "최미래", username="future_choi")

ODD_TEXT = '쉼표, "따옴표" 그리고\n줄바꿈 — 대출 한도는요?'
SCRIPT_TEXT = "<script>alert(1)</script> 대출 서류는 어디에 내나요?"
FORMULA_TEXT = '=HYPERLINK("http://example.com","펀드") 규모 알려주세요'


def kst(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """A moment in November 2025, Korean time, as the bot stores it (UTC)."""
    return dt.datetime(2025, 11, day, hour, minute, tzinfo=KST).astimezone(dt.UTC)


@dataclass
class Filled:
    url: str
    ids: dict[str, int]  # follow-up ids by name


async def fill(url: str) -> Filled:
    """Three days of questions (3-5 Nov 2025, KST) and follow-ups, plus one day either side."""
    await asyncio.to_thread(upgrade_schema, url)
    database = Database(url, Path("/nonexistent/spool.jsonl"))
    questions = [
        # name, asker, text, status, asked at, follow-up
        ("before", CHOI, "신청 마감일은 언제인가요?", "unanswered", kst(2, 15), True),
        ("q1", LEE, "국민성장펀드 규모는 얼마인가요?", "answered", kst(3, 10), False),
        ("q2", KIM, "대출 금리가 몇 %예요?", "unanswered", kst(3, 11), True),
        ("q3", LEE, "안녕하세요", "smalltalk", kst(3, 12), False),
        # 08:30 KST on the 4th is still the 3rd in UTC: it must count on the 4th.
        ("q4", CHOI, "성장펀드 몇 조예요?", "answered", kst(4, 8, 30), False),
        ("q5", KIM, ODD_TEXT, "unanswered", kst(4, 9), True),
        ("q6", CHOI, SCRIPT_TEXT, "unanswered", kst(4, 16), True),
        ("q7", LEE, "투자 한도가 기업당 얼마예요", "unanswered", kst(5, 9), True),
        ("q8", KIM, FORMULA_TEXT, "answered", kst(5, 10), False),
        ("q9", KIM, "아주 긴 질문 " * 50, "too_long", kst(5, 11), False),
        ("after", LEE, "펀드 규모 다시 알려주세요", "answered", kst(6, 10), False),
    ]
    ids = {}
    async with database.session() as session:
        for message_id, (name, asker, text, status, when, followup) in enumerate(questions, 1):
            recorded = await record_question(session, QuestionRecord(
                asker=asker, chat_id=asker.id, message_id=message_id, text=text, status=status,
                asked_at=when, entry_id="fund-size" if status == "answered" else None,
                score=4.2 if status == "answered" else None, wants_followup=followup))
            if followup:
                ids[name] = recorded.followup_id
        await record_answer(session, ids["q2"], MEMBER,
                            "초저리 대출 금리는 <아직> 확정 전입니다. 3월에 공지합니다.")
        answered = await session.get(FollowUp, ids["q2"])
        answered.answered_at = kst(3, 13)  # two hours after it was asked
        session.add(answered)
        await session.commit()
        await close_followup(session, ids["q5"], MEMBER)
        await close_followup(session, ids["q7"], MEMBER, kb_gap=True)
    await database.close()
    return Filled(url, ids)


@pytest.fixture
def knowledge(tmp_path: Path) -> Path:
    return write_knowledge(tmp_path / "knowledge")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, knowledge: Path):
    """Point `maxbot` (its Settings read the environment) at a database and knowledge."""
    monkeypatch.setenv("KNOWLEDGE_DIR", str(knowledge))
    monkeypatch.setenv("ANALYZER", "kiwi")
    monkeypatch.setenv("SPOOL_PATH", str(tmp_path / "spool.jsonl"))
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)

    def use(url: str) -> None:
        monkeypatch.setenv("DATABASE_URL", url)

    return use


@pytest.fixture
async def filled(database_url: str, env) -> Filled:
    data = await fill(database_url)
    env(database_url)
    return data


async def maxbot(*argv: str) -> int:
    """`maxbot ...` in a thread: the commands run their own event loop."""
    return await asyncio.to_thread(cli.main, list(argv))


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_bytes().decode("utf-8-sig"), newline="")))


async def test_csv_opens_in_korean_excel_and_round_trips(filled: Filled, tmp_path: Path,
                                                         capsys) -> None:
    out = tmp_path / "questions.csv"
    assert await maxbot("export", "--format", "csv", "--since", "2025-11-03",
                        "--until", "2025-11-05", "--out", str(out)) == 0
    assert "질문 9건" in capsys.readouterr().out

    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = read_csv(out)
    assert [r["질문"] for r in rows] == [
        "국민성장펀드 규모는 얼마인가요?", "대출 금리가 몇 %예요?", "안녕하세요",
        "성장펀드 몇 조예요?", ODD_TEXT, SCRIPT_TEXT, "투자 한도가 기업당 얼마예요",
        "'" + FORMULA_TEXT,
        "아주 긴 질문 " * 50]
    by_text = {r["질문"]: r for r in rows}
    asked = by_text["대출 금리가 몇 %예요?"]
    assert asked["질문자"] == "김철수 박" and asked["처리"] == "미답변"
    assert asked["질문 시각(KST)"] == "2025-11-03 11:00"
    assert asked["문의 번호"] == str(filled.ids["q2"]) and asked["문의 상태"] == "답변 완료"
    assert asked["사무국 답변"] == "초저리 대출 금리는 <아직> 확정 전입니다. 3월에 공지합니다."
    assert asked["답변 시각(KST)"] == "2025-11-03 13:00"
    assert by_text[ODD_TEXT]["문의 상태"] == "종료"
    assert by_text["국민성장펀드 규모는 얼마인가요?"]["텔레그램 사용자명"] == "ceo_lee"
    assert by_text["국민성장펀드 규모는 얼마인가요?"]["문의 번호"] == ""


async def test_xlsx_has_both_sheets_with_bold_headers(filled: Filled, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    out = tmp_path / "report.xlsx"
    assert await maxbot("export", "--format", "xlsx", "--since", "2025-11-03",
                        "--until", "2025-11-05", "--out", str(out)) == 0
    book = load_workbook(out)
    assert book.sheetnames == ["요약", "질문", "사무국 문의"]
    questions, followups = book["질문"], book["사무국 문의"]

    header = [c.value for c in questions[1]]
    assert header[:5] == ["질문 번호", "질문 시각(KST)", "질문자", "텔레그램 사용자명", "질문"]
    assert all(c.font.b for c in questions[1]) and all(c.font.b for c in followups[1])
    assert questions.column_dimensions["E"].width == 60
    texts = [row[4] for row in questions.iter_rows(min_row=2, values_only=True)]
    assert len(texts) == 9 and ODD_TEXT in texts and SCRIPT_TEXT in texts
    assert FORMULA_TEXT in texts  # kept as text, not turned into a formula
    formula_cell = questions.cell(texts.index(FORMULA_TEXT) + 2, 5)
    assert formula_cell.data_type == "s"
    assert questions.cell(2, 2).value == dt.datetime(2025, 11, 3, 10, 0)

    rows = {r[0]: r for r in followups.iter_rows(min_row=2, values_only=True)}
    ids = filled.ids
    assert set(rows) == {ids["q2"], ids["q5"], ids["q6"], ids["q7"]}  # not the one of the 2nd
    assert rows[ids["q2"]][1] == "답변 완료" and "3월에 공지" in rows[ids["q2"]][7]
    assert rows[ids["q5"]][1] == "종료" and rows[ids["q6"]][1] == "열림"
    assert rows[ids["q7"]][10] == "예"  # marked as a knowledge-base gap
    assert rows[ids["q6"]][6] == SCRIPT_TEXT


async def test_xlsx_opens_on_a_summary_and_names_faq_entries_by_their_question(
        filled: Filled, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    out = tmp_path / "report.xlsx"
    assert await maxbot("export", "--since", "2025-11-03", "--until", "2025-11-05",
                        "--out", str(out)) == 0
    book = load_workbook(out)
    assert book.active.title == "요약"
    summary = {row[0]: row[1] for row in book["요약"].iter_rows(values_only=True)}
    assert summary["기간 (한국 시간)"] == "2025.11.03. – 2025.11.05."
    # What the bot decided, by kind: small talk apart from the questions it answered or queued.
    assert summary["질문"] == 8
    assert (summary["  답변"], summary["  미답변"], summary["  주제 밖"],
            summary["  일상 대화"]) == (3, 4, 0, 1)
    assert summary["답변율 (주제 밖·일상 대화 제외)"] == pytest.approx(3 / 7)
    assert summary["길이·속도 제한으로 거절한 메시지"] == 1
    assert (summary["접수"], summary["  답변 완료"], summary["  종료"], summary["  열림"]) == (
        4, 1, 1, 2)
    assert summary["답변까지 걸린 시간 (중앙값)"] == "2.0시간"
    rate = next(r for r in book["요약"].iter_rows() if r[0].value.startswith("답변율"))[1]
    assert rate.number_format == "0%"

    questions = book["질문"]
    header = [c.value for c in questions[1]]
    assert "점수" not in header and "FAQ 항목" not in header
    served = {row[4]: row[header.index("답변한 FAQ")]
              for row in questions.iter_rows(min_row=2, values_only=True)}
    # The entry as the asker saw it, not its id (fund-size) or a score.
    assert served["성장펀드 몇 조예요?"] == "국민성장펀드 규모는 얼마인가요?"
    assert served["대출 금리가 몇 %예요?"] is None
    assert not any(isinstance(v, float) for row in questions.iter_rows(min_row=2,
                                                                       values_only=True)
                   for v in row)


async def test_followups_lists_by_status_as_json_and_text(filled: Filled, capsys) -> None:
    ids = filled.ids
    assert await maxbot("followups", "--status", "open", "--json") == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [f["id"] for f in listed] == [ids["before"], ids["q6"], ids["q7"]]
    assert {f["status"] for f in listed} == {"open"}
    gap = listed[2]
    assert gap["kb_gap"] is True and gap["question"] == "투자 한도가 기업당 얼마예요"
    assert gap["asker_name"] == "이대표" and gap["asker_username"] == "ceo_lee"
    assert gap["created_at"] == "2025-11-05T09:00:00+09:00" and gap["answer"] is None

    assert await maxbot("followups", "--since", "2025-11-03") == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[0].split() == ["번호", "상태", "접수(KST)", "질문자", "질문"]
    answered = next(line for line in lines if line.startswith(f"#{ids['q2']} "))
    assert "답변 완료" in answered and "2025-11-03 11:00" in answered and "김철수 박" in answered
    assert "↳ 답변: 초저리 대출 금리는 <아직> 확정 전입니다." in text
    assert "이대표 @ceo_lee" in text and "열림 ·공백" in text
    assert f"#{ids['before']} " not in text  # opened on the 2nd
    assert "4건 (열림 2 · 답변 완료 1 · 종료 1, 지식베이스 공백 1)" in text
    # The question column starts at the same terminal column on every line.
    closed = next(line for line in lines if line.startswith(f"#{ids['q5']} "))
    starts = {_columns(lines[0][:lines[0].rindex("질문")]),
              _columns(answered[:answered.index("대출 금리가")]),
              _columns(closed[:closed.index("쉼표,")])}
    assert len(starts) == 1


def _columns(text: str) -> int:
    from bot.reports.listing import display_width

    return display_width(text)


def _chart_bars(html: str) -> list[str]:
    bars = re.search(r'<g class="bars">(.*?)</g>', html, re.S).group(1)
    return re.findall(r'<rect class="bar"[^>]*><title>([^<]*)</title>', bars)


async def test_html_report_shows_figures_chart_open_followups_and_terms(
        filled: Filled, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    assert await maxbot("export", "--format", "html", "--since", "2025-11-03",
                        "--until", "2025-11-05", "--out", str(out)) == 0
    html = out.read_text(encoding="utf-8")

    assert "기간 2025.11.03. – 2025.11.05." in html
    assert re.search(r'id="total-questions">8<', html)  # too_long is no question to answer
    assert "답변 3 · 미답변 4 · 주제 밖 0 · 일상 대화 1" in html
    assert re.search(r'id="answer-rate">43<', html)  # 3 of 7, small talk left out
    assert re.search(r'id="followups-opened">4<', html)
    assert "답변 1 · 종료 1 · 열림 2" in html
    assert re.search(r'id="median-hours">2.0시간<', html)

    # One bar per Korean day; the 08:30 question counts on the 4th.
    assert _chart_bars(html) == [
        "2025.11.03. (월) 질문 3건 · 답변율 50%",
        "2025.11.04. (화) 질문 3건 · 답변율 33%",
        "2025.11.05. (수) 질문 2건 · 답변율 50%",
    ]
    assert "<polyline" in html and "질문(건)" in html and "답변율" in html

    table = re.search(r'<table class="open">(.*?)</table>', html, re.S).group(1)
    rows = re.findall(r"<tr><td class=\"num\">(\d+)</td><td class=\"when\">([^<]*)</td>"
                      r"<td>([^<]*)</td><td class=\"question\">([^<]*)</td>", table)
    assert rows == [
        (str(filled.ids["q6"]), "2025.11.04. 16:00", "최미래 @future_choi",
         "&lt;script&gt;alert(1)&lt;/script&gt; 대출 서류는 어디에 내나요?"),
        (str(filled.ids["q7"]), "2025.11.05. 09:00", "이대표 @ceo_lee",
         "투자 한도가 기업당 얼마예요"),
    ]
    assert "이 기간 밖에 접수되어 아직 열린 문의가 1건 더 있습니다" in html
    assert "<script" not in html and "alert(1)" in html

    terms = re.search(r'<table class="terms">(.*?)</table>', html, re.S).group(1)
    counts = dict(re.findall(r"<tr><td>([^<]*)</td><td class=\"num\">(\d+)</td>", terms))
    assert counts["대출"] == "3" and counts["한도"] == "2"
    # Self-contained: nothing fetched from elsewhere.
    assert "http://" not in html and "https://" not in html and "<link" not in html


async def test_html_report_counts_what_the_bot_decided_and_lists_what_it_took_for_small_talk(
        filled: Filled, tmp_path: Path) -> None:
    database = Database(filled.url, Path("/nonexistent/spool.jsonl"))
    misrouted = "펀드 신청은 어떻게 해요 ㅎㅎ"  # on topic, taken for small talk
    async with database.session() as session:
        for message_id, (text, status, when) in enumerate([
                (misrouted, "smalltalk", kst(5, 14)),
                ("오늘 저녁 메뉴 추천해 줘", "off_topic", kst(5, 15))], start=100):
            await record_question(session, QuestionRecord(
                asker=LEE, chat_id=LEE.id, message_id=message_id, text=text, status=status,
                asked_at=when))
    await database.close()

    out = tmp_path / "report.html"
    assert await maxbot("export", "--since", "2025-11-03", "--until", "2025-11-05",
                        "--out", str(out)) == 0
    html = out.read_text(encoding="utf-8")
    decided = dict(re.findall(r'<tr id="decided-(\w+)"><td>[^<]*</td><td class="num">(\d+)<',
                              html))
    assert decided == {"answered": "3", "unanswered": "4", "off_topic": "1", "smalltalk": "2"}
    listed = re.search(r'<table class="offtopic">(.*?)</table>', html, re.S).group(1)
    rows = re.findall(r'<td class="when">([^<]*)</td><td>([^<]*)</td>'
                      r'<td class="question">([^<]*)</td>', listed)
    # Newest first; answered and queued questions are not listed.
    assert rows == [("2025.11.05. 15:00", "주제 밖", "오늘 저녁 메뉴 추천해 줘"),
                    ("2025.11.05. 14:00", "일상 대화", misrouted),
                    ("2025.11.03. 12:00", "일상 대화", "안녕하세요")]


async def test_the_english_html_report_has_no_korean_but_what_people_wrote_and_the_same_figures(
        filled: Filled, tmp_path: Path) -> None:
    period = ("--since", "2025-11-03", "--until", "2025-11-05")
    korean, english = tmp_path / "report-ko.html", tmp_path / "report-en.html"
    assert await maxbot("export", *period, "--out", str(korean)) == 0
    assert await maxbot("export", *period, "--out", str(english), "--language", "en") == 0
    ko, en = korean.read_text(encoding="utf-8"), english.read_text(encoding="utf-8")

    assert '<html lang="en">' in en and "<title>Secretariat's report 2025.11.03." in en
    assert re.search(r'id="median-hours">2.0 h<', en)
    assert _chart_bars(en)[0] == "Mon 2025-11-03: 3 questions · answer rate 50%"
    assert '<tr id="decided-unanswered"><td>Unanswered (sent to the secretariat)</td>' in en
    # Every figure of the Korean report, in the same order: counts, rates, days, the chart.
    # Not the minute each was written at: the two exports may fall on either side of one.
    def figures(report: str) -> list[str]:
        return re.findall(r"\d+", re.sub(r"· (?:written|작성) [^<]*", "", report))

    assert len(re.findall(r"· (?:written|작성) ", ko + en)) == 2
    assert figures(en) == figures(ko)

    # Korean is left only where people wrote it: their messages, their names, and the words
    # of unanswered questions, each a word of one of the period's questions (as the CSV has
    # them).
    table = tmp_path / "questions.csv"
    assert await maxbot("export", *period, "--out", str(table), "--language", "en") == 0
    questions = [row["question"] for row in read_csv(table)]
    terms = re.search(r'<table class="terms">(.*?)</table>', en, re.S).group(1)
    words = re.findall(r"<tr><td>([^<]*)</td>", terms)
    assert words and all(any(w in q for q in questions) for w in words)
    rest = re.sub(r'<td class="question">[^<]*</td>', "", en)
    for written in [f"<tr><td>{w}</td>" for w in words] + [
            name for asker in (LEE, KIM, CHOI) for name in (asker.first_name, asker.last_name)
            if name]:
        rest = rest.replace(written, "")
    assert re.findall(r"[가-힣]+", rest) == []


@pytest.mark.parametrize(("language", "hours", "shown"), [
    ("en", 0.005, "&lt; 1 min"), ("en", 0.5, "30 min"), ("en", 2.0, "2.0 h"),
    ("ko", 0.005, "1분 미만"), ("ko", 0.5, "30분"), ("ko", 2.0, "2.0시간"),
])
def test_a_wait_reads_short_enough_for_the_reports_card(language: str, hours: float,
                                                         shown: str) -> None:
    """The report's card for the median wait is a quarter of the page wide at 28px: "under
    a minute" broke over two lines there."""
    from bot.replies import _environment

    template = _environment().get_template(f"{language}/_duration.html.j2")
    assert str(template.module.duration(hours)).strip() == shown


def test_chart_reads_with_one_day_and_ninety() -> None:
    from bot.reports.charts import daily_chart
    from bot.reports.stats import DayFigures

    start = dt.date(2025, 9, 1)
    one = daily_chart([DayFigures(start, 4, 3, 1)])
    assert len(one.bars) == 1 and one.bars[0].width <= 48
    assert one.rate_lines == [] and len(one.rate_points) == 1  # a lone day is a dot
    assert [t.label for t in one.count_ticks] == ["0", "1", "2", "3", "4"]

    days = [DayFigures(start + dt.timedelta(days=n), n % 7 * 5, n % 7 * 2, n % 7)
            for n in range(90)]
    ninety = daily_chart(days)
    assert len(ninety.bars) == 90
    assert all(ninety.left <= b.x and b.x + b.width <= ninety.right for b in ninety.bars)
    assert len(ninety.day_ticks) <= 12  # labels do not overlap
    assert ninety.count_ticks[-1].label == "30"
    # Days without questions break the answer-rate line instead of dropping it to 0.
    assert len(ninety.rate_lines) == 13


async def test_exports_and_the_listing_read_in_english_from_the_english_templates(
        filled: Filled, tmp_path: Path) -> None:
    """Every word of the export and the listing comes from a template, so the English twins
    give reports with no Korean but what people wrote."""
    from bot.replies import _environment
    from bot.reports.charts import daily_chart
    from bot.reports.export import summary_rows, to_csv
    from bot.reports.listing import format_followups
    from bot.reports.period import day_start, read_period
    from bot.reports.stats import daily_figures, period_stats
    from bot.storage.database import with_database
    from bot.storage.records import followups_between

    start, end = day_start(dt.date(2025, 11, 3)), day_start(dt.date(2025, 11, 6))
    spool = tmp_path / "spool.jsonl"

    async def cases(database: Database):
        async with database.session() as session:
            return await followups_between(session, start)

    # The reports run their own event loop, as `maxbot` does.
    period = await asyncio.to_thread(
        with_database, filled.url, spool, lambda db: read_period(db, start, end))
    listed = await asyncio.to_thread(with_database, filled.url, spool, cases)
    hangul = re.compile(r"[가-힣]")

    header = to_csv(period, {}, "en").decode("utf-8-sig").splitlines()[0].split(",")
    assert header[:3] == ["question no.", "asked at (KST)", "asker"]
    assert len(header) == 12 and not any(hangul.search(h) for h in header)

    stats = period_stats(period.questions, period.cases, None, start, end)
    labels = [name for name, _ in summary_rows(period, stats, kst(6, 12), "en")]
    assert labels[0] == "period (Korean time)" and "  small talk" in labels
    assert all(name.strip() and not hangul.search(name) for name in labels)

    listing = format_followups(listed, "en").splitlines()
    assert listing[0].split() == ["no.", "status", "opened", "(KST)", "asker", "question"]
    assert listing[-1] == "4 follow-ups (open 2 · answered 1 · closed 1, knowledge gaps 1)"
    assert format_followups([], "en") == "No follow-ups match."

    chart = daily_chart(daily_figures(period.questions, period.first_day, period.last_day))
    words = _environment().get_template("en/_chart.html.j2").module
    assert str(words.bar_title(chart.bars[0])) == "Mon 2025-11-03: 3 questions · answer rate 50%"
    assert str(words.day_label(chart.day_ticks[1])) == "11/4 Tue"


# --- in a browser -------------------------------------------------------------------------


def png_pixels(path: Path) -> tuple[int, int, np.ndarray]:
    """Width, height and RGB(A) pixels of an 8-bit PNG, decoded with zlib and numpy."""
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), "not a PNG"
    pos, chunks, idat = 8, {}, []
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        assert zlib.crc32(kind + body) == struct.unpack(">I", data[pos + 8 + length:
                                                                   pos + 12 + length])[0]
        if kind == b"IDAT":
            idat.append(body)
        else:
            chunks[kind] = body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert depth == 8 and colour in (2, 6) and interlace == 0, "unexpected PNG layout"
    channels = 3 if colour == 2 else 4
    stride = width * channels
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8)
    rows = raw.reshape(height, stride + 1)
    pixels = np.zeros((height, stride), dtype=np.uint8)
    previous = np.zeros(stride, dtype=np.int16)
    for y in range(height):
        kind, line = rows[y, 0], rows[y, 1:].astype(np.int16)
        if kind == 0:
            out = line
        elif kind == 1:  # Sub: running sum per channel
            out = np.cumsum(line.reshape(width, channels), axis=0).reshape(stride) & 0xFF
        elif kind == 2:  # Up
            out = (line + previous) & 0xFF
        else:  # Average or Paeth: depend on the pixel to the left, one pixel at a time
            out = _unfilter_sequential(kind, line, previous, channels)
        pixels[y] = out
        previous = out.astype(np.int16)
    return width, height, pixels.reshape(height, width, channels)


def _unfilter_sequential(kind: int, line: np.ndarray, up: np.ndarray, channels: int
                         ) -> np.ndarray:
    cur = [0] * len(line)
    line_l, up_l = line.tolist(), up.tolist()
    for i, value in enumerate(line_l):
        a = cur[i - channels] if i >= channels else 0
        b = up_l[i]
        if kind == 3:
            cur[i] = (value + (a + b) // 2) & 0xFF
            continue
        c = up_l[i - channels] if i >= channels else 0
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        predictor = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
        cur[i] = (value + predictor) & 0xFF
    return np.array(cur, dtype=np.int16)


async def test_html_report_renders_in_a_headless_browser(tmp_path: Path, env) -> None:
    if not CHROMIUM.exists():
        pytest.skip("chromium is not installed: apt-get update && apt-get install -y chromium "
                    "(and fonts-noto-cjk for Korean glyphs)")
    url = f"sqlite+aiosqlite:///{tmp_path / 'db' / 'maxbot.db'}"
    await fill(url)
    env(url)
    page = tmp_path / "report.html"
    assert await maxbot("export", "--since", "2025-11-03", "--until", "2025-11-05",
                        "--out", str(page)) == 0  # the format from the file's ending
    shot = tmp_path / "report.png"
    result = await asyncio.to_thread(subprocess.run, [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={tmp_path / 'chromium'}", "--hide-scrollbars",
        "--window-size=1200,1600", f"--screenshot={shot}", page.as_uri(),
    ], capture_output=True, text=True, timeout=60)
    assert shot.exists(), f"no screenshot: {result.stderr[-2000:]}"

    width, height, pixels = await asyncio.to_thread(png_pixels, shot)
    assert (width, height) == (1200, 1600)
    rgb = pixels[..., :3].astype(np.uint32)
    colours = set(np.unique(rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2]).tolist())
    assert len(colours) > 50, f"a nearly blank page: {len(colours)} colours"
    # The chart's bar colour (#4c78a8) and answer-rate colour (#e4572e) are on the page.
    assert 0x4C78A8 in colours and 0xE4572E in colours

"""Admins add policy documents by sending them; the bot answers from them at once, and a file
that is not for the knowledge base, or not from an admin, writes nothing.

One file just over 400 lines: one behaviour area, the conversion of each format and the talk."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import re
from pathlib import Path

import pytest
import yaml
from sqlmodel import select

from bot.documents.caption import parse_caption
from bot.documents.conversion import (
    MAX_UPLOAD_BYTES,
    Section,
    UploadRefused,
    convert,
    looks_like_heading,
)
from bot.documents.policy import (
    free_path,
    new_source_id,
    policy_markdown,
    policy_path,
    slugify,
    source_entry,
    write_upload,
)
from bot.replies import render, to_plain_text
from bot.storage.models import AdminAction
from index import KnowledgeIndex, build_index, load_knowledge
from index.knowledge import Category, Source, split_passages
from testing.harness import RunningBot, bot_settings, running_bot
from tests.conftest import PROJECT


def refusal_of(action, *args, language: str = "ko") -> str:
    """What the admin reads when `action(*args)` refuses a file."""
    with pytest.raises(UploadRefused) as refused:
        action(*args)
    return to_plain_text(render("upload_refusal", language, code=refused.value.code,
                                **refused.value.details))


ADMIN = 9100
USER = 9200
CATEGORIES = {"fund": Category("fund", "펀드 개요", "Fund overview"),
              "support": Category("support", "지원 방식", "Financing methods")}


def korean_pdf(pages: list[list[str]]) -> bytes:
    """A minimal PDF with Korean text: a Type0 font whose glyph ids are the characters' code
    points (Identity-H) and a ToUnicode map that says so, which is what text extraction reads.
    """
    chars = sorted({c for lines in pages for line in lines for c in line})
    objects: list[bytes] = [b"", b""]  # the catalog and the page tree, filled in below
    cmap = ("/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n"
            "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
            "/CMapName /Adobe-Identity-UCS def /CMapType 2 def\n"
            "1 begincodespacerange <0000> <FFFF> endcodespacerange\n"
            f"{len(chars)} beginbfchar\n"
            + "\n".join(f"<{ord(c):04X}> <{ord(c):04X}>" for c in chars)
            + "\nendbfchar\nendcmap CMapName currentdict /CMap defineresource pop end end"
            ).encode()

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    def stream(data: bytes) -> int:
        return add(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(data), data))

    to_unicode = stream(cmap)
    cid_font = add(b"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /NanumGothic "
                   b"/CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> "
                   b"/DW 1000 >>")
    font = add(b"<< /Type /Font /Subtype /Type0 /BaseFont /NanumGothic /Encoding /Identity-H "
               b"/DescendantFonts [%d 0 R] /ToUnicode %d 0 R >>" % (cid_font, to_unicode))
    kids = []
    for lines in pages:
        shown = b"".join(b"<%s> Tj T*\n" % line.encode("utf-16-be").hex().encode()
                         for line in lines)
        contents = stream(b"BT /F1 12 Tf 14 TL 72 760 Td\n" + shown + b"ET")
        kids.append(add(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
                        b"/Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>"
                        % (font, contents)))
    objects[0] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids), len(kids))
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)


def hwpx_document(title: str, sections: list[tuple[str, str]]) -> bytes:
    """An HWPX file as Hancom writes one: the title, then each heading in the outline style
    개요 1 followed by its text in 바탕글 (python-hwpx's writer)."""
    from hwpx import HwpxDocument

    document = HwpxDocument.new()
    document.paragraphs[0].text = title
    for heading, text in sections:
        document.add_heading(heading, level=1)
        document.add_paragraph(text, style="바탕글")
    return document.to_bytes()


PDF = korean_pdf([
    ["시범 상담 안내", "1. 운영 일정", "시범 상담 주간은 3월 둘째 주입니다.",
     "상담은 온라인으로 진행합니다."],
    ["2. 신청 방법", "사무국 누리집에서 신청합니다."],
])
HWPX = hwpx_document("AI 바우처 설명회 안내", [
    ("설명회 일정", "AI 바우처 설명회는 4월 셋째 주 목요일에 열립니다."),
    ("참가 방법", "참가를 원하는 기업은 사전 등록을 해야 합니다."),
])


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
async def live(tg, tmp_path: Path, knowledge_copy: Path, database_url: str,
               real_index: KnowledgeIndex):
    """The bot serving a writable copy of the knowledge base, with one admin; the copy is
    indexed with the session's analyzer (the glossary is the same), which saves loading Kiwi."""
    settings = bot_settings(tg, tmp_path, database_url=database_url, knowledge_dir=knowledge_copy,
                            admin_user_ids=frozenset({ADMIN}))
    index = build_index(load_knowledge(knowledge_copy), real_index.analyzer)
    async with running_bot(tg, settings, index) as bot:
        bot.admin = tg.user(ADMIN, "관리자")
        bot.user = tg.user(USER, "사용자")
        yield bot


async def reply_to_admin(bot: RunningBot, timeout: float = 60) -> str:
    """The bot's next new message to the admin (removing a keyboard is an edit, not a reply)."""
    return (await bot.tg.wait_for_message(bot.admin, lambda m: m.kind == "sent",
                                          timeout=timeout)).text


async def ask(bot: RunningBot, text: str) -> str:
    bot.tg.send_text(bot.user, text)
    return (await bot.tg.wait_for_message(bot.user)).text


async def upload_actions(bot: RunningBot) -> list[tuple[int, str]]:
    async with bot.database.session() as session:
        rows = (await session.exec(select(AdminAction).order_by(AdminAction.id))).all()
    return [(r.person_id, r.action) for r in rows if r.action.startswith("upload")]


# --- end to end, through the stand-in -------------------------------------------------------


async def test_an_uploaded_pdf_and_hwpx_are_answered_from_with_their_new_sources(
        live: RunningBot) -> None:
    root = live.settings.knowledge_dir
    sources_before = (root / "sources.yaml").read_bytes()
    documents_before = set(root.parent.rglob("*.md"))
    before = live.services.index.version
    assert "3월 둘째 주" not in await ask(live, "시범 상담 주간은 언제인가요?")

    # A caption with source, date and topic: no questions. The name tries to climb out of
    # the policy folder; the file lands inside it all the same.
    live.tg.send_document(live.admin, "../../시범 상담 안내.pdf", PDF, "application/pdf",
                          caption="출처: 산업부 보도자료, 2026-01-15\n분류: fund")
    done = await reply_to_admin(live)
    version = live.services.index.version
    assert "추가했습니다" in done and "policy/시범-상담-안내.md" in done
    assert "정책 문단 2개 색인" in done and f"{before} → {version}" in done
    assert "U20260115-1" in done
    sources = (root / "sources.yaml").read_bytes()
    assert sources.startswith(sources_before)  # appended; no other entry rewritten
    assert "U20260115-1:\n  title: 산업부 보도자료" in sources.decode()
    assert set(root.parent.rglob("*.md")) - documents_before == {
        root / "policy" / "시범-상담-안내.md"}
    written = (root / "policy" / "시범-상담-안내.md").read_text(encoding="utf-8")
    assert "title: 시범 상담 안내\nsources: [U20260115-1]\nas_of: 2026-01-15\ncategory: fund" \
        in written
    assert "# 1. 운영 일정\n시범 상담 주간은 3월 둘째 주입니다." in written

    reply = await ask(live, "시범 상담 주간은 언제인가요?")
    assert "시범 상담 주간은 3월 둘째 주입니다" in reply
    assert "「산업부 보도자료」(2026.01.15.)" in reply

    # No caption: the bot asks for the source (with its publisher), the date and the topic.
    live.tg.send_document(live.admin, "AI바우처.hwpx", HWPX, "application/hwp+zip")
    assert "출처" in await reply_to_admin(live)
    live.tg.send_text(live.admin, "중소벤처기업부 / AI 바우처 설명회 공고")
    assert "기준일" in await reply_to_admin(live)
    live.tg.send_text(live.admin, "2월 3일쯤")
    assert "날짜를 읽지 못했습니다" in await reply_to_admin(live)
    live.tg.send_text(live.admin, "2026-02-03")
    topics = await live.tg.wait_for_message(live.admin)
    [support] = [data for text, data in topics.buttons if text == "지원 방식"]
    live.tg.press(live.admin, topics, support)
    done = await reply_to_admin(live)
    assert "policy/ai바우처.md" in done and "정책 문단 2개 색인" in done
    assert "U20260203-1" in done and "분류: 지원 방식" in done

    reply = await ask(live, "AI 바우처 설명회는 언제 열리나요?")
    assert "4월 셋째 주 목요일" in reply
    assert "중소벤처기업부 「AI 바우처 설명회 공고」(2026.02.03.)" in reply
    assert await upload_actions(live) == [
        (ADMIN, "upload"), (ADMIN, "upload_done"), (ADMIN, "upload"), (ADMIN, "upload_done")]


async def test_a_source_typed_before_the_question_was_confirmed_sent_is_the_source(
        live: RunningBot) -> None:
    """Telegram shows the bot's question before the bot hears back that it was sent; the
    admin's answer in that moment is the upload's next step, not a question to the bot."""
    live.tg.hold("sendMessage", delivered=True)
    live.tg.send_document(live.admin, "AI바우처.hwpx", HWPX, "application/hwp+zip")
    assert "출처" in await reply_to_admin(live)
    live.tg.send_text(live.admin, "중소벤처기업부 / AI 바우처 설명회 공고")
    await live.tg.wait_until(lambda: live.tg.pending_updates == 0)
    await asyncio.sleep(0.5)  # the bot has the answer while its question is unconfirmed
    live.tg.release("sendMessage")
    assert "기준일" in await reply_to_admin(live, timeout=20)


async def test_what_is_not_an_admins_readable_document_writes_nothing(live: RunningBot) -> None:
    root = live.settings.knowledge_dir
    before = snapshot(root)
    version = live.services.index.version

    # Without a caption the bot asks; /cancel ends it.
    live.tg.send_document(live.admin, "메모.txt", "1. 개요\n시범 운영을 합니다.".encode(),
                          "text/plain")
    assert "출처" in await reply_to_admin(live)
    live.tg.send_text(live.admin, "/cancel")
    assert "취소했습니다" in await reply_to_admin(live)

    # An existing document is not overwritten unless the admin says so.
    live.tg.send_document(live.admin, "fund-overview.md", "# 개요\n새 내용".encode(),
                          "text/markdown", caption="출처: 산업부, 2026-01-15; 분류: fund")
    choice = await live.tg.wait_for_message(live.admin, lambda m: m.kind == "sent")
    assert "policy/fund-overview.md 문서가 이미 있습니다" in choice.text
    assert [text for text, _ in choice.buttons] == ["덮어쓰기", "새 이름 fund-overview-2.md"]
    live.tg.send_text(live.admin, "/cancel")
    assert "취소했습니다" in await reply_to_admin(live)

    # Anyone else's document gets the refusal everyone got before.
    live.tg.send_document(live.user, "정책.md", "# 제목\n본문".encode(), "text/markdown",
                          caption="출처: 산업부 보도자료, 2026-01-15; 분류: fund")
    assert "문서 파일은 받지 않습니다" in (await live.tg.wait_for_message(live.user)).text

    # Too big: refused from Telegram's file size, before anything is downloaded.
    downloads = len(live.tg.calls("getFile"))
    live.tg.send_document(live.admin, "큰파일.pdf", b"%PDF-1.7\n" + bytes(MAX_UPLOAD_BYTES),
                          "application/pdf", caption="출처: 산업부, 2026-01-15; 분류: fund")
    assert "너무 큽니다" in await reply_to_admin(live)
    assert len(live.tg.calls("getFile")) == downloads

    # A PDF by name only, an HWPX that is a plain zip, a binary "text", a .docx.
    for name, data, expected in [
        ("가짜.pdf", b"<html>not a pdf</html>", "내용은 텍스트"),
        ("가짜.hwpx", _zip({"a.txt": b"x"}), "내용은 ZIP"),
        ("이진.txt", b"\x01\x02\x03\x04\x05\x06" * 50, "글 파일이 아닙니다"),
        ("보고서.docx", _zip({"word/document.xml": b"<w/>"}), ".docx 파일은 받지 않습니다"),
    ]:
        live.tg.send_document(live.admin, name, data,
                              caption="출처: 산업부, 2026-01-15; 분류: fund")
        refused = await reply_to_admin(live)
        assert expected in refused and "아무것도 저장하지 않았습니다" in refused

    assert snapshot(root) == before and live.services.index.version == version
    assert await upload_actions(live) == [
        *[(ADMIN, "upload"), (ADMIN, "upload_cancelled")] * 2,
        (live.user.id, "upload"),  # the refused attempt of someone who is no admin
        *[(ADMIN, "upload"), (ADMIN, "upload_refused")] * 5]
    async with live.database.session() as session:
        refused = (await session.exec(select(AdminAction).where(
            AdminAction.person_id == live.user.id))).all()
    assert [(a.allowed, a.detail) for a in refused] == [(False, "정책.md (15 bytes)")]


async def test_an_admin_who_reads_english_is_told_in_english_why_a_file_is_refused(
        live: RunningBot) -> None:
    live.tg.send_text(live.admin, "/lang en")
    assert "English" in await reply_to_admin(live)
    for name, data, expected in [
        ("보고서.docx", _zip({"word/document.xml": b"<w/>"}),
         ".docx files are not accepted; only .md, .txt, .pdf and .hwpx are."),
        ("가짜.pdf", b"<html>not a pdf</html>", "The name says .pdf, but the content is text."),
        ("옛날.hwpx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600),
         "the content is HWP (5.0) or an old Office document. Save it as 'HWPX' in Hangul"),
    ]:
        live.tg.send_document(live.admin, name, data,
                              caption="출처: 산업부, 2026-01-15; 분류: fund")
        refused = await reply_to_admin(live)
        assert f"{name} was not added: " in refused and expected in refused
        assert "Nothing was saved." in refused and not re.search(r"[가-힣]", refused.replace(
            name, ""))
    async with live.database.session() as session:
        details = (await session.exec(select(AdminAction.detail).where(
            AdminAction.action == "upload_refused").order_by(AdminAction.id))).all()
    assert details[1] == "가짜.pdf: 이름은 .pdf 파일인데 내용은 텍스트입니다.", "the log is Korean"


async def test_an_upload_that_breaks_the_knowledge_base_is_undone(live: RunningBot) -> None:
    root = live.settings.knowledge_dir
    (root / "faq" / "broken.yaml").write_text("entries: [\n", encoding="utf-8")
    before = snapshot(root)
    version = live.services.index.version
    live.tg.send_document(live.admin, "점검.md", "# 시범 점검\n분기마다 합니다.\n".encode(),
                          "text/markdown", caption="source: 시험 자료; date: 2026-03-02; "
                                                   "category: fund")
    failed = await reply_to_admin(live)
    assert "되돌렸습니다" in failed and "broken.yaml" in failed
    assert snapshot(root) == before and live.services.index.version == version
    assert await upload_actions(live) == [(ADMIN, "upload"), (ADMIN, "upload_failed")]


def _zip(files: dict[str, bytes]) -> bytes:
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


# --- the checks and the conversion alone ----------------------------------------------------


@pytest.mark.parametrize("name, slug", [
    ("../../evil.md", "evil"),
    ("..\\..\\windows\\evil.md", "evil"),
    ("/etc/passwd", "passwd"),
    (".bashrc", "upload"),
    ("....md", "upload"),
    ("", "upload"),
    ("국민성장펀드 안내(최종).HWPX", "국민성장펀드-안내-최종"),
    ("\u1100\u1161\u11a8 정책.pdf", "각-정책"),  # decomposed Hangul, as macOS names files
    ("Fund_Plan 2026.v2.txt", "fund-plan-2026-v2"),
])
def test_file_names_become_safe_slugs(name: str, slug: str) -> None:
    assert slugify(name) == slug


def test_the_final_path_must_be_a_file_directly_in_policy(tmp_path: Path) -> None:
    policy = tmp_path / "policy"
    policy.mkdir()
    assert policy_path(policy, "안내") == policy / "안내.md"
    for bad in ("..", "../x", ".hidden", "a/b", ""):
        with pytest.raises(UploadRefused):
            policy_path(policy, bad)
    (policy / "link.md").symlink_to(tmp_path / "outside.md")
    with pytest.raises(UploadRefused):
        policy_path(policy, "link")
    (policy / "안내.md").write_text("x")
    (policy / "안내-2.md").write_text("x")
    assert free_path(policy, "안내") == policy / "안내-3.md"
    assert new_source_id(dt.date(2026, 3, 2), {"U20260302-1", "S1"}) == "U20260302-2"


def test_a_written_upload_can_be_undone_byte_for_byte(tmp_path: Path) -> None:
    sources = tmp_path / "sources.yaml"
    sources.write_bytes(b"S1:\n  title: t\n  publisher: p\n  date: 2025-12-04")  # no newline
    target = tmp_path / "policy.md"
    target.write_bytes(b"old document\n")
    entry = source_entry("U20260115-1", "자료: 제목", "기관", dt.date(2026, 1, 15), "note")
    written = write_upload(sources, entry, target, "new document\n")
    assert target.read_text(encoding="utf-8") == "new document\n"
    data = yaml.safe_load(sources.read_text(encoding="utf-8"))
    assert data["U20260115-1"] == {"title": "자료: 제목", "publisher": "기관",
                                   "date": dt.date(2026, 1, 15)}
    assert data["S1"]["date"] == dt.date(2025, 12, 4)
    written.undo()
    assert sources.read_bytes() == b"S1:\n  title: t\n  publisher: p\n  date: 2025-12-04"
    assert target.read_bytes() == b"old document\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policy.md", "sources.yaml"]


def test_captions_give_source_date_topic_and_publisher() -> None:
    info = parse_caption("출처: 산업부 보도자료, 2026-01-15", CATEGORIES)
    assert (info.source, info.date, info.category) == ("산업부 보도자료", dt.date(2026, 1, 15),
                                                       None)
    info = parse_caption("source: KDB notice; date: 2026.1.5.; category: 지원 방식; "
                         "publisher: 한국산업은행", CATEGORIES)
    assert (info.source, info.date, info.category, info.publisher) == (
        "KDB notice", dt.date(2026, 1, 5), "support", "한국산업은행")
    assert parse_caption("2026년 2월 30일", CATEGORIES).date is None
    assert parse_caption(None, CATEGORIES) == parse_caption("그냥 메모", CATEGORIES)


def test_text_is_utf8_or_cp949_and_never_binary() -> None:
    text = "1. 개요\n시범 운영을 합니다.\n"
    for encoded in (text.encode(), text.encode("utf-8-sig"), text.encode("cp949"),
                    text.encode("utf-16")):
        converted = convert("메모.txt", encoded)
        assert converted.sections == (Section("1. 개요", ("시범 운영을 합니다.",)),)
    for data, reason in [(b"", "빈 파일"), (b"\x00\x01binary", "이진"),
                         (b"\n\n   \n", "읽을 수 있는 글이 없습니다"),
                         (b"\x80\xff" * 20, "UTF-8도 CP949")]:
        assert reason in refusal_of(convert, "메모.txt", data)


def test_pdf_pages_and_headings_encrypted_and_broken_pdfs() -> None:
    from pypdf import PdfReader, PdfWriter

    converted = convert("안내.pdf", PDF)
    assert [s.heading for s in converted.sections] == ["", "1. 운영 일정", "2. 신청 방법"]
    pages = convert("쪽.pdf", korean_pdf([["첫 쪽 내용입니다."], ["둘째 쪽 내용입니다."]]))
    assert [s.heading for s in pages.sections] == ["1쪽", "2쪽"]

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(PDF)))
    writer.encrypt(user_password="secret", algorithm="RC4-128")
    locked = io.BytesIO()
    writer.write(locked)
    assert refusal_of(convert, "잠김.pdf", locked.getvalue()) == (
        "암호가 걸린 PDF입니다. 암호를 푼 파일을 보내 주세요.")
    assert refusal_of(convert, "잠김.pdf", locked.getvalue(), language="en") == (
        "The PDF is password-protected. Please send it without the password.")
    assert refusal_of(convert, "깨짐.pdf", b"%PDF-1.7\n" + b"garbage " * 100).startswith(
        "PDF를 읽지 못했습니다")
    assert "읽을 수 있는 글이 없습니다" in refusal_of(convert, "빈.pdf", korean_pdf([[]]))


def test_hwpx_headings_come_from_outline_styles() -> None:
    converted = convert("바우처.hwpx", HWPX)
    assert [s.heading for s in converted.sections] == ["", "설명회 일정", "참가 방법"]
    assert converted.sections[1].text == "AI 바우처 설명회는 4월 셋째 주 목요일에 열립니다."
    encrypted = _zip({"mimetype": b"application/hwp+zip", "Contents/section0.xml": b"x",
                      "META-INF/manifest.xml": b"<manifest><encryption-data/></manifest>"})
    assert "암호가 걸린(또는 배포용) HWPX" in refusal_of(convert, "잠김.hwpx", encrypted)
    assert refusal_of(convert, "옛날.hwpx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600)) == (
        "이름은 .hwpx 파일인데 내용은 HWP(5.0) 또는 옛 오피스 문서입니다. "
        "한글에서 'HWPX'로 저장해 보내 주세요.")


def test_headings_are_short_titles_not_sentences() -> None:
    assert all(map(looks_like_heading, ["1. 개요", "Ⅱ. 추진 배경", "제3장 지원 대상",
                                         "【신청 방법】", "2) 일정", "# 요약"]))
    assert not any(map(looks_like_heading, [
        "1. 시범 상담 주간은 3월 둘째 주입니다.", "3.5%의 금리", "2025. 12. 2.(화) 16:00",
        "1.", "보도시점 | 2025. 12. 2.", "일반 문장", "1. " + "아주 긴 제목" * 20]))


def test_the_written_document_passes_the_loaders_checks(tmp_path: Path) -> None:
    title = '안내: "따옴표" #제목'
    sections = (Section("", (title,)), Section("1. 일정", ("# 해시로 시작하는 줄", "내용")),
                Section("2. 긴 절", ("가나다라마바사 " * 400,)))
    text = policy_markdown(title, "U20260115-1", dt.date(2026, 1, 15), "fund", sections,
                           "uploaded by admin 1 from x.txt")
    source = Source("U20260115-1", "자료", "기관", dt.date(2026, 1, 15))
    passages = split_passages(tmp_path / "안내.md", text, {source.id: source}, CATEGORIES)
    assert passages[0].document_title == title  # the title line itself is no passage
    assert passages[0].heading == "1. 일정" and passages[0].text.startswith("# 해시로")
    assert [p.heading for p in passages[1:]] == ["2. 긴 절", "2. 긴 절 (2)", "2. 긴 절 (3)"]
    assert all(len(p.text) <= 1500 for p in passages)


def test_every_refusal_the_code_raises_has_its_words_in_both_languages() -> None:
    codes = set()
    for path in (PROJECT / "bot").rglob("*.py"):
        codes |= set(re.findall(r'UploadRefused\("([a-z_0-9]+)"', path.read_text("utf-8")))
    assert {"too_big", "encrypted", "content", "not_valid"} <= codes
    details = {"extension": ".x", "kind": "zip", "megabytes": 11.0, "limit": 10, "pages": 301,
               "format": "PDF", "error": "disk full"}
    for code in sorted(codes):
        for language in ("ko", "en"):
            assert render("upload_refusal", language, code=code, **details).strip(), (
                f"no words for {code!r} in {language}/upload_refusal.html.j2")

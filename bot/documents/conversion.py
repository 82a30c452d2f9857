"""Admins add policy documents by sending them to the bot: .md, .txt, .pdf or .hwpx.

The first half is pure: checks (size, extension against content, encoding, encryption, a safe
file name that stays inside knowledge/policy/), conversion to the policy Markdown format
(front matter, a section per heading), caption parsing. The second half is the conversation:
an admin sends a file in a private chat; what the caption does not say (source, date, topic)
is asked for; the files are written, the knowledge is reloaded, and a reload that fails puts
everything back as it was.
"""

from __future__ import annotations

import asyncio
import codecs
import datetime as dt
import io
import logging
import os
import re
import secrets
import unicodedata
import warnings
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import yaml
from sqlalchemy.exc import SQLAlchemyError
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import (
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.warnings import PTBUserWarning

from bot.handlers.questions import not_text
from bot.reloading import ReloadFailed
from bot.replies import KST, render
from bot.services import services_of
from bot.storage.records import log_action
from index.knowledge import HEADING, Category, KnowledgeError, Source, split_passages

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
# A document's text, pages and passages: enough for a long policy paper, not for a dump.
MAX_TEXT_CHARS = 400_000
MAX_PDF_PAGES = 300
# A passage is sent whole as an answer; Telegram's message limit is 4096 characters.
MAX_PASSAGE_CHARS = 1500
MAX_HEADING_CHARS = 80
MAX_SLUG_CHARS = 60
# HWPX is a zip: refuse archives that would unpack to far more than a document needs.
MAX_ZIP_ENTRIES = 2000
MAX_ZIP_UNPACKED = 200 * 1024 * 1024

EXTENSIONS = {".md": "text", ".txt": "text", ".pdf": "pdf", ".hwpx": "hwpx"}
KIND_NAMES = {"text": "텍스트", "pdf": "PDF", "hwpx": "HWPX", "zip": "ZIP 압축 파일",
              "ole": "HWP(5.0) 또는 옛 오피스 문서", "binary": "이진 파일"}
DEFAULT_PUBLISHER = "관리자 업로드"


class UploadRefused(Exception):
    """A file that is not taken; `reason` is said to the admin as it is."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class Section:
    heading: str
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines).strip()


@dataclass(frozen=True)
class Converted:
    """A document's text as headed sections; `title` when the document names itself."""

    kind: str
    sections: tuple[Section, ...]
    title: str | None = None

    @property
    def first_line(self) -> str | None:
        for section in self.sections:
            if section.heading:
                return section.heading
            for line in section.lines:
                if line.strip():
                    return line.strip()
        return None


# --- what the file is ---------------------------------------------------------------------


def extension_of(file_name: str) -> str:
    name = _last_component(file_name)
    return ("." + name.rsplit(".", 1)[1].lower()) if "." in name.strip(".") else ""


def sniff(data: bytes) -> str:
    """What the bytes are, whatever the name says: pdf, hwpx, zip, ole, binary or text."""
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                if "mimetype" in archive.namelist():
                    info = archive.getinfo("mimetype")
                    if info.file_size < 100 and (archive.read(info).strip()
                                                 == b"application/hwp+zip"):
                        return "hwpx"
        except (zipfile.BadZipFile, RuntimeError, OSError, NotImplementedError):
            pass
        return "zip"
    if data.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "ole"
    if data.startswith((b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"\x7fELF", b"MZ", b"\x1f\x8b",
                        b"Rar!", b"7z\xbc\xaf")):
        return "binary"
    return "text"


def check_kind(file_name: str, data: bytes) -> str:
    """The kind to convert as, when the extension and the content agree; else refuse."""
    extension = extension_of(file_name)
    expected = EXTENSIONS.get(extension)
    if expected is None:
        raise UploadRefused(
            f"{extension or '확장자 없는'} 파일은 받지 않습니다. .md, .txt, .pdf, .hwpx만 됩니다.")
    actual = sniff(data)
    if actual != expected:
        hint = " 한글에서 'HWPX'로 저장해 보내 주세요." if actual == "ole" else ""
        raise UploadRefused(f"이름은 {extension} 파일인데 내용은 {KIND_NAMES[actual]}입니다."
                            + hint)
    return expected


# --- conversion -----------------------------------------------------------------------------


def convert(file_name: str, data: bytes) -> Converted:
    """Check and convert a file to headed sections (blocking; run it in a thread)."""
    if not data:
        raise UploadRefused("빈 파일입니다.")
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadRefused(f"파일이 너무 큽니다 ({len(data) / 1024 / 1024:.1f}MB, "
                            f"최대 {MAX_UPLOAD_BYTES // 1024 // 1024}MB).")
    kind = check_kind(file_name, data)
    if kind == "pdf":
        converted = pdf_sections(data)
    elif kind == "hwpx":
        converted = hwpx_sections(data)
    elif extension_of(file_name) == ".md":
        converted = markdown_sections(decode_text(data))
    else:
        converted = text_sections(decode_text(data))
    sections = tuple(s for s in converted.sections if s.text)
    if not sections:
        raise UploadRefused("읽을 수 있는 글이 없습니다 (스캔한 이미지뿐인 문서일 수 있습니다).")
    if sum(len(s.text) for s in sections) > MAX_TEXT_CHARS:
        raise UploadRefused(f"글이 너무 깁니다 (최대 {MAX_TEXT_CHARS:,}자). 나눠서 보내 주세요.")
    return replace(converted, sections=sections)


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 with a BOM, or CP949; never binary."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise UploadRefused("UTF-16 글자를 읽지 못했습니다.") from exc
    else:
        if b"\x00" in data:
            raise UploadRefused("글 파일이 아닙니다 (이진 데이터가 들어 있습니다).")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            try:
                text = data.decode("cp949")
            except UnicodeDecodeError as exc:
                raise UploadRefused("UTF-8도 CP949(EUC-KR)도 아닌 글자가 있습니다. "
                                    "UTF-8로 저장해 보내 주세요.") from exc
    controls = sum(1 for c in text if unicodedata.category(c) == "Cc" and c not in "\t\n\r\f")
    if controls > max(2, len(text) // 200):
        raise UploadRefused("글 파일이 아닙니다 (제어 문자가 많습니다).")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def markdown_sections(text: str) -> Converted:
    """Markdown as it is: its headings start sections; its own front matter gives a title."""
    title = None
    if text.startswith("---"):
        match = re.match(r"\A---\s*\n(.*?)\n---\s*\n", text, re.DOTALL)
        if match:
            try:
                meta = yaml.safe_load(match.group(1))
            except yaml.YAMLError:
                meta = None
            if isinstance(meta, dict) and isinstance(meta.get("title"), str | int):
                title = _one_line(str(meta["title"]))
            text = text[match.end():]
    sections = [Section("", ())]
    for line in text.splitlines():
        heading = HEADING.match(line)
        if heading:
            sections.append(Section(_one_line(heading.group(2)), ()))
        else:
            sections[-1] = Section(sections[-1].heading, (*sections[-1].lines, line))
    if title is None:
        title = next((s.heading for s in sections if s.heading), None)
    return Converted("markdown", _merge_empty_headings(sections), title)


def text_sections(text: str) -> Converted:
    """Plain text: short numbered or bracketed lines ("1. 개요", "【신청】") start sections."""
    return Converted("text", _sections_from_lines(text.splitlines()))


def pdf_sections(data: bytes) -> Converted:
    """PDF text by page: sections at detected headings, else one section per page."""
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")
            except Exception as exc:  # pypdf raises several kinds for unsupported ciphers
                raise UploadRefused("암호가 걸린 PDF입니다. 암호를 푼 파일을 보내 주세요.") from exc
            if not opened:
                raise UploadRefused("암호가 걸린 PDF입니다. 암호를 푼 파일을 보내 주세요.")
        if len(reader.pages) > MAX_PDF_PAGES:
            raise UploadRefused(f"쪽이 너무 많습니다 ({len(reader.pages)}쪽, "
                                f"최대 {MAX_PDF_PAGES}쪽).")
        pages = [(page.extract_text() or "") for page in reader.pages]
    except UploadRefused:
        raise
    except Exception as exc:  # a broken PDF fails in many ways; none of them is ours to fix
        log.info("unreadable PDF: %s", exc)
        raise UploadRefused("PDF를 읽지 못했습니다 (손상되었거나 지원하지 않는 형식).") from exc
    lines = [[_clean(line) for line in page.splitlines()] for page in pages]
    if any(looks_like_heading(line) for page in lines for line in page):
        return Converted("pdf", _sections_from_lines([line for page in lines for line in page]))
    if len(lines) == 1:
        return Converted("pdf", (Section("", tuple(lines[0])),))
    return Converted("pdf", tuple(Section(f"{number}쪽", tuple(page))
                                  for number, page in enumerate(lines, start=1)))


# Hancom's built-in outline styles: "개요 1" … "개요 10" (English "Outline 1" …).
_OUTLINE_STYLE = re.compile(r"^(?:개요|outline)\s*(\d{1,2})$", re.IGNORECASE)


def hwpx_sections(data: bytes) -> Converted:
    """HWPX (OWPML) text by paragraph; headings where the paragraph style is an outline level
    (개요 N), else short numbered lines as in plain text.

    Read with python-hwpx: its text export follows Hancom's own text save (tables row by row,
    text boxes, notes) and leaves out what is no body text (memos, the guide text of empty
    form fields), and it guards against zip bombs. Only its plain-text export, its paragraph
    list and the style tables are used.
    """
    _check_hwpx_package(data)
    from hwpx import HwpxDocument

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            document = HwpxDocument.open(data)
            try:
                styles = {str(key): style for key, style in document.styles.items()}
                outline_paragraphs = {
                    str(key) for key, prop in document.paragraph_properties.items()
                    if getattr(getattr(prop, "heading", None), "type", None) == "OUTLINE"}
                headings = []
                for paragraph in document.paragraphs:
                    style = styles.get(str(paragraph.style_id_ref))
                    names = (getattr(style, "name", "") or "", getattr(style, "eng_name", "") or "")
                    if (any(_OUTLINE_STYLE.match(n.strip()) for n in names)
                            or str(paragraph.para_pr_id_ref) in outline_paragraphs):
                        text = _clean(paragraph.text)
                        if text and len(text) <= MAX_HEADING_CHARS:
                            headings.append(text)
                text = document.text.plain()
            finally:
                document.close()
    except Exception as exc:  # python-hwpx raises its own errors and XML/zip ones
        log.info("unreadable HWPX: %s", exc)
        raise UploadRefused("HWPX를 읽지 못했습니다 (손상되었거나 지원하지 않는 형식).") from exc
    lines = [_clean(re.sub(r"\t+", " | ", line.strip("\t"))) for line in text.splitlines()]
    return Converted("hwpx", _sections_from_lines(lines, headings))


def _check_hwpx_package(data: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            if len(infos) > MAX_ZIP_ENTRIES or sum(i.file_size for i in infos) > MAX_ZIP_UNPACKED:
                raise UploadRefused("HWPX 압축을 풀면 너무 큽니다.")
            if any(i.flag_bits & 0x1 for i in infos):
                raise UploadRefused("암호가 걸린 HWPX입니다. 암호를 푼 파일을 보내 주세요.")
            names = set(archive.namelist())
            manifest = "META-INF/manifest.xml"
            if (manifest in names and archive.getinfo(manifest).file_size < 1024 * 1024
                    and b"encryption-data" in archive.read(manifest)):
                raise UploadRefused("암호가 걸린(또는 배포용) HWPX입니다. "
                                    "암호를 푼 파일을 보내 주세요.")
            if not any(re.fullmatch(r"Contents/section\d+\.xml", n) for n in names):
                raise UploadRefused("HWPX에 본문(Contents/section*.xml)이 없습니다.")
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:
        raise UploadRefused("HWPX 압축을 열지 못했습니다.") from exc


_NUMBERED = re.compile(
    r"^(?:(?:제\s*\d+\s*[장절관편]"           # 제1장 총칙
    r"|[IVX]{1,4}\s*[.)]|[Ⅰ-Ⅻ]\s*[.)]?"       # II. 추진 배경, Ⅱ 추진 배경
    r"|\d{1,2}\s*[.)](?!\d))\s*[^\s.)]"        # 1. 개요, 2) 일정 (not 3.5, not "1.")
    r"|[\[【〈<《]\s*[^\]】〉>》]{1,40}[\]】〉>》]$)")  # [신청 방법], 【개요】
# Sentences end in 다 or punctuation; titles (개요, 추진 배경, 일정) do not.
_SENTENCE_END = re.compile(r"(?:[.!?,;:]|다)$")


def looks_like_heading(line: str) -> bool:
    """A short numbered or bracketed title line (or a Markdown heading), not a sentence."""
    line = line.strip()
    if not line or len(line) > MAX_HEADING_CHARS:
        return False
    if HEADING.match(line):
        return True
    if " | " in line:  # a table row
        return False
    return bool(_NUMBERED.match(line)) and not _SENTENCE_END.search(line)


def _sections_from_lines(lines: list[str], styled: list[str] | None = None
                         ) -> tuple[Section, ...]:
    """Lines into sections: `styled` headings (in order), else headings by their look."""
    pending = list(styled or [])
    use_look = not pending
    sections = [Section("", ())]
    for raw in lines:
        line = _clean(raw)
        is_heading = False
        if pending and line == pending[0]:
            pending.pop(0)
            is_heading = True
        elif use_look and looks_like_heading(line):
            is_heading = True
        if is_heading:
            heading = HEADING.match(line)
            sections.append(Section(_one_line(heading.group(2) if heading else line), ()))
        else:
            sections[-1] = Section(sections[-1].heading, (*sections[-1].lines, line))
    return _merge_empty_headings(sections)


def _merge_empty_headings(sections: list[Section]) -> tuple[Section, ...]:
    """A heading with nothing under it joins the next heading ("1. 개요 · 가. 목적")."""
    merged: list[Section] = []
    carry = ""
    for section in sections:
        heading = " · ".join(h for h in (carry, section.heading) if h)[:MAX_HEADING_CHARS * 2]
        if not section.text and section.heading:
            carry = heading
            continue
        carry = ""
        merged.append(Section(heading, section.lines))
    if carry:
        merged.append(Section(carry, (carry,)))
    return tuple(merged)


def _clean(line: str) -> str:
    """One line of text: no control characters, no trailing blanks."""
    line = "".join(" " if unicodedata.category(c) == "Cc" and c != "\t" else c for c in line)
    return unicodedata.normalize("NFC", line).rstrip()


def _one_line(text: str) -> str:
    return " ".join(_clean(text).split()).lstrip("#").strip()


# --- names and places -----------------------------------------------------------------------


def _last_component(file_name: str) -> str:
    return re.split(r"[\\/]", unicodedata.normalize("NFC", file_name or ""))[-1]


def slugify(file_name: str) -> str:
    """A file stem of lowercase ASCII letters, digits, Korean syllables and '-': no path
    separators, no leading dot, never empty."""
    name = _last_component(file_name)
    stem = name.rsplit(".", 1)[0]
    slug = re.sub(r"[^a-z0-9가-힣]+", "-", stem.lower())
    slug = slug.strip("-")[:MAX_SLUG_CHARS].strip("-")
    return slug or "upload"


def policy_path(policy_dir: Path, slug: str) -> Path:
    """knowledge/policy/<slug>.md, checked to resolve to a file directly in the policy folder."""
    if not re.fullmatch(r"[a-z0-9가-힣][a-z0-9가-힣-]*", slug):
        raise UploadRefused("파일 이름을 쓸 수 없습니다.")
    target = policy_dir / f"{slug}.md"
    if target.resolve().parent != policy_dir.resolve() or target.is_symlink():
        raise UploadRefused("파일 이름이 정책 문서 폴더 밖을 가리킵니다.")
    return target


def free_path(policy_dir: Path, slug: str) -> Path:
    """The first of <slug>.md, <slug>-2.md, <slug>-3.md … that does not exist yet."""
    target = policy_path(policy_dir, slug)
    number = 2
    while target.exists():
        target = policy_path(policy_dir, f"{slug[:MAX_SLUG_CHARS - 4]}-{number}")
        number += 1
    return target


# --- source, date and topic from the caption ------------------------------------------------


_CAPTION_KEYS = {
    "출처": "source", "자료": "source", "source": "source",
    "날짜": "date", "일자": "date", "기준일": "date", "date": "date", "as_of": "date",
    "분류": "category", "주제": "category", "카테고리": "category", "category": "category",
    "발행": "publisher", "발행처": "publisher", "기관": "publisher", "publisher": "publisher",
    "제목": "title", "title": "title",
}
_KEY = re.compile(r"(?i)(?<![\w가-힣])(" + "|".join(sorted(_CAPTION_KEYS, key=len, reverse=True))
                  + r")\s*[:：=]")
_DATE = re.compile(r"(\d{4})\s*[-./년]\s*(\d{1,2})\s*[-./월]\s*(\d{1,2})\s*일?\.?")


def parse_date(text: str) -> dt.date | None:
    match = _DATE.search(text or "")
    if not match:
        return None
    try:
        value = dt.date(*(int(g) for g in match.groups()))
    except ValueError:
        return None
    return value if 2000 <= value.year <= 2100 else None


@dataclass(frozen=True)
class CaptionInfo:
    source: str | None = None
    publisher: str | None = None
    date: dt.date | None = None
    category: str | None = None
    title: str | None = None


def parse_caption(caption: str | None, categories: dict[str, Category]) -> CaptionInfo:
    """`출처: 산업부 보도자료, 2026-01-15` or `source: …; date: 2026-01-15; category: fund`."""
    if not caption:
        return CaptionInfo()
    found: dict[str, str] = {}
    keys = list(_KEY.finditer(caption))
    for number, key in enumerate(keys):
        end = keys[number + 1].start() if number + 1 < len(keys) else len(caption)
        value = caption[key.end():end].strip().strip(",;").strip()
        found.setdefault(_CAPTION_KEYS[key.group(1).lower()], value)
    date = parse_date(found.get("date", "")) or parse_date(caption)
    source = found.get("source")
    if source:
        source = clean_source(_DATE.sub("", source))
    return CaptionInfo(source=source or None,
                       publisher=clean_source(found.get("publisher", "")) or None,
                       date=date, category=match_category(found.get("category"), categories),
                       title=_one_line(found.get("title", ""))[:200] or None)


def clean_source(text: str) -> str:
    """A source title on one line, without the separators and quotes around it."""
    return _one_line(text).strip(" ,;·-「」『』\"'“”")[:200]


def split_publisher(source: str) -> tuple[str, str | None]:
    """`산업부 / 시범 상담 보도자료` names the publisher before the slash."""
    parts = re.split(r"\s+[/|]\s+", source, maxsplit=1)
    if len(parts) == 2 and all(p.strip() for p in parts):
        return clean_source(parts[1]), clean_source(parts[0])
    return source, None


def match_category(value: str | None, categories: dict[str, Category]) -> str | None:
    """A category key from its key or its Korean or English label."""
    wanted = " ".join((value or "").split()).casefold()
    if not wanted:
        return None
    for key, category in categories.items():
        if wanted in (key.casefold(), category.ko.casefold(), category.en.casefold()):
            return key
    return None


# --- the files written ----------------------------------------------------------------------


def new_source_id(date: dt.date, existing: set[str]) -> str:
    number = 1
    while f"U{date:%Y%m%d}-{number}" in existing:
        number += 1
    return f"U{date:%Y%m%d}-{number}"


def source_ids_on_disk(sources_path: Path) -> set[str]:
    try:
        data = yaml.safe_load(sources_path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return set()
    return {str(k) for k in data} if isinstance(data, dict) else set()


def source_entry(source_id: str, title: str, publisher: str, date: dt.date, note: str) -> str:
    """YAML for one new sources.yaml entry, with a comment saying where it came from."""
    body = yaml.safe_dump({source_id: {"title": title, "publisher": publisher, "date": date}},
                          allow_unicode=True, sort_keys=False, width=1000)
    return f"\n# {_one_line(note)}\n{body}"


def document_title(converted: Converted, file_name: str, caption_title: str | None) -> str:
    """The caption's title, the document's own, its first heading or line, or its file name."""
    for candidate in (caption_title, converted.title, converted.first_line):
        if candidate and _one_line(candidate):
            title = _one_line(candidate)
            return title if len(title) <= 100 else title[:99] + "…"
    stem = _last_component(file_name).rsplit(".", 1)[0]
    return _one_line(stem.replace("_", " ")) or "업로드 문서"


def passage_sections(sections: tuple[Section, ...]) -> list[Section]:
    """Sections cut to passages a message can hold: long ones continue as "제목 (2)"."""
    passages = []
    for section in sections:
        chunks: list[list[str]] = [[]]
        size = 0
        for line in _short_lines(section.lines):
            if size + len(line) > MAX_PASSAGE_CHARS and any(s.strip() for s in chunks[-1]):
                chunks.append([])
                size = 0
            chunks[-1].append(line)
            size += len(line) + 1
        for number, chunk in enumerate(chunks, start=1):
            heading = section.heading if number == 1 else f"{section.heading} ({number})".strip()
            passages.append(Section(heading, tuple(chunk)))
    return passages


def _short_lines(lines: tuple[str, ...]) -> list[str]:
    """Lines no longer than a passage: a long one is cut after sentences, else anywhere."""
    out = []
    for line in lines:
        while len(line) > MAX_PASSAGE_CHARS:
            cut = max(line.rfind(". ", 0, MAX_PASSAGE_CHARS), line.rfind(" ", 0, MAX_PASSAGE_CHARS))
            cut = cut + 1 if cut > MAX_PASSAGE_CHARS // 2 else MAX_PASSAGE_CHARS
            out.append(line[:cut].rstrip())
            line = line[cut:].lstrip()
        out.append(line)
    return out


def policy_markdown(title: str, source_id: str, as_of: dt.date, category: str,
                    sections: tuple[Section, ...], note: str) -> str:
    """The policy document: front matter, then a `# heading` before each section."""
    meta = yaml.safe_dump({"title": title, "sources": [source_id], "as_of": as_of,
                           "category": category},
                          allow_unicode=True, sort_keys=False, default_flow_style=None,
                          width=1000)
    out = [f"---\n# {_one_line(note)}\n{meta}---"]
    if (len(sections) > 1 and not sections[0].heading
            and _one_line(sections[0].text) == title):
        sections = sections[1:]  # a first line that is only the title says nothing more
    for number, section in enumerate(passage_sections(sections)):
        if section.heading:
            out.append(f"\n# {section.heading}")
        elif number:
            out.append("\n# (계속)")
        for line in section.lines:
            # Text that looks like a Markdown heading stays text.
            out.append(" " + line if HEADING.match(line) or line.startswith("---") else line)
    return "\n".join(out).rstrip() + "\n"


@dataclass
class WrittenUpload:
    """What an upload wrote, and what to put back if the reload refuses it."""

    sources_path: Path
    sources_before: bytes
    policy_path: Path
    policy_before: bytes | None

    def undo(self) -> None:
        if self.policy_before is None:
            self.policy_path.unlink(missing_ok=True)
        else:
            _atomic_write(self.policy_path, self.policy_before)
        _atomic_write(self.sources_path, self.sources_before)


def write_upload(sources_path: Path, entry: str, target: Path, markdown: str) -> WrittenUpload:
    """Append the source to sources.yaml (other entries untouched), then write the document."""
    written = WrittenUpload(sources_path, sources_path.read_bytes(), target,
                            target.read_bytes() if target.exists() else None)
    try:
        with sources_path.open("a", encoding="utf-8") as sources:
            if written.sources_before and not written.sources_before.endswith(b"\n"):
                sources.write("\n")
            sources.write(entry)
        _atomic_write(target, markdown.encode("utf-8"))
    except OSError:
        written.undo()
        raise
    return written


def _atomic_write(path: Path, data: bytes) -> None:
    """Write a file whole or not at all; the temporary file is hidden from *.md globs."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


# --- the conversation -----------------------------------------------------------------------

SOURCE, DATE, CATEGORY, OVERWRITE = range(4)
TIMEOUT_SECONDS = 600


@dataclass
class PendingUpload:
    token: str
    file_name: str
    converted: Converted
    slug: str
    caption_title: str | None
    source: str | None = None
    publisher: str | None = None
    date: dt.date | None = None
    category: str | None = None
    overwrite: bool | None = None


def _pending(context: ContextTypes.DEFAULT_TYPE) -> PendingUpload | None:
    return context.user_data.get("upload") if context.user_data is not None else None


async def _audit(update: Update, context: ContextTypes.DEFAULT_TYPE, action: str,
                 detail: str, allowed: bool = True) -> None:
    services = services_of(context)
    try:
        async with services.database.session() as session:
            await log_action(session, update.effective_user.id, action, detail[:500], allowed)
    except SQLAlchemyError:
        log.exception("audit log not written for %s", action)


async def received(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    """A document in a private chat: an admin's starts an upload; anyone else's is refused as
    before."""
    from bot.handlers.admin import is_admin  # bot.admin imports this module for its handlers

    services = services_of(context)
    message = update.effective_message
    user = update.effective_user
    if user is None or user.id not in services.settings.admin_user_ids:
        # Anyone may send a file; a document to an admin-only feature is a refused attempt.
        document = message.document
        await _audit(update, context, "upload", f"{document.file_name or ''} "
                     f"({document.file_size or '?'} bytes)", allowed=False)
        await not_text(update, context)
        return ConversationHandler.END
    document = message.document
    file_name = _one_line(document.file_name or "") or "이름 없는 파일"
    if not await is_admin(update, context, "upload",
                          f"{file_name} ({document.file_size or '?'} bytes)"):
        return ConversationHandler.END

    async def refuse(reason: str) -> int:
        await _audit(update, context, "upload_refused", f"{file_name}: {reason}")
        await message.reply_html(render("upload_refused", file_name=file_name, reason=reason))
        return ConversationHandler.END

    if extension_of(file_name) not in EXTENSIONS:
        return await refuse(f"{extension_of(file_name) or '확장자 없는'} 파일은 받지 않습니다. "
                            ".md, .txt, .pdf, .hwpx만 됩니다.")
    if document.file_size is not None and document.file_size > MAX_UPLOAD_BYTES:
        return await refuse(f"파일이 너무 큽니다 ({document.file_size / 1024 / 1024:.1f}MB, "
                            f"최대 {MAX_UPLOAD_BYTES // 1024 // 1024}MB).")
    try:
        telegram_file = await document.get_file()
        data = bytes(await telegram_file.download_as_bytearray())
    except Exception:
        log.exception("upload %s not downloaded", file_name)
        return await refuse("파일을 내려받지 못했습니다. 다시 보내 주세요.")
    try:
        converted = await asyncio.to_thread(convert, file_name, data)
    except UploadRefused as refused:
        return await refuse(refused.reason)
    except Exception:
        log.exception("upload %s not converted", file_name)
        return await refuse("파일을 읽지 못했습니다.")

    caption = parse_caption(message.caption, services.index.knowledge.categories)
    source, publisher = split_publisher(caption.source) if caption.source else (None, None)
    context.user_data["upload"] = PendingUpload(
        token=secrets.token_hex(4), file_name=file_name, converted=converted,
        slug=slugify(file_name), caption_title=caption.title, source=source,
        publisher=caption.publisher or publisher, date=caption.date, category=caption.category)
    return await _next_step(update, context)


async def _ask(update: Update, pending: PendingUpload, step: str,
               markup: InlineKeyboardMarkup | None = None, **extra: object) -> None:
    await update.effective_message.reply_html(
        render("upload_ask", step=step, file_name=pending.file_name,
               kind=KIND_NAMES.get(pending.converted.kind, "Markdown"),
               sections=len(pending.converted.sections), **extra),
        reply_markup=markup)


async def _next_step(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    """Ask for what is still missing, or write the document."""
    pending = _pending(context)
    if pending is None:
        return ConversationHandler.END
    services = services_of(context)
    if pending.source is None:
        await _ask(update, pending, "source", first=True)
        return SOURCE
    if pending.date is None:
        await _ask(update, pending, "date", retry=False)
        return DATE
    categories = services.index.knowledge.categories
    if pending.category not in categories:
        buttons = [InlineKeyboardButton(c.ko, callback_data=f"up:{pending.token}:c:{c.key}")
                   for c in categories.values()]
        await _ask(update, pending, "category",
                   InlineKeyboardMarkup([buttons[i:i + 2] for i in range(0, len(buttons), 2)]))
        return CATEGORY
    policy_dir = services.settings.knowledge_dir / "policy"
    try:
        target = policy_path(policy_dir, pending.slug)
        if target.exists() and pending.overwrite is None:
            alternative = free_path(policy_dir, pending.slug)
            await _ask(update, pending, "overwrite", InlineKeyboardMarkup([[
                InlineKeyboardButton("덮어쓰기", callback_data=f"up:{pending.token}:o:1"),
                InlineKeyboardButton(f"새 이름 {alternative.name}",
                                     callback_data=f"up:{pending.token}:o:0")]]),
                name=target.name, new_name=alternative.name)
            return OVERWRITE
    except UploadRefused as refused:
        return await _give_up(update, context, refused.reason)
    await _finish(update, context, pending)
    return ConversationHandler.END


async def got_source(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    pending = _pending(context)
    if pending is None:
        return ConversationHandler.END
    text = update.effective_message.text or ""
    source = clean_source(_DATE.sub("", text))
    if not source:
        await _ask(update, pending, "source", first=False)
        return SOURCE
    pending.source, publisher = split_publisher(source)
    pending.publisher = pending.publisher or publisher
    pending.date = pending.date or parse_date(text)
    return await _next_step(update, context)


async def got_date(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    pending = _pending(context)
    if pending is None:
        return ConversationHandler.END
    date = parse_date(update.effective_message.text or "")
    if date is None:
        await _ask(update, pending, "date", retry=True)
        return DATE
    pending.date = date
    return await _next_step(update, context)


async def got_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int | None:
    """The topic or the overwrite choice; buttons of an earlier upload are stale."""
    query = update.callback_query
    pending = _pending(context)
    _, token, kind, value = [*query.data.split(":", 3), "", "", ""][:4]
    if pending is None or token != pending.token:
        await query.answer("끝난 업로드의 버튼입니다.", show_alert=True)
        return None
    await query.answer()
    await query.edit_message_reply_markup(None)
    if kind == "c":
        if value not in services_of(context).index.knowledge.categories:
            return None
        pending.category = value
    elif kind == "o":
        pending.overwrite = value == "1"
    return await _next_step(update, context)


async def stale_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A topic or overwrite button pressed after its upload ended."""
    await update.callback_query.answer("끝난 업로드의 버튼입니다.", show_alert=True)


async def cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    pending = context.user_data.pop("upload", None)
    await _audit(update, context, "upload_cancelled", pending.file_name if pending else "")
    await update.effective_message.reply_html(render("upload_cancelled", timeout=False))
    return ConversationHandler.END


async def busy(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Another document while one is waiting for answers."""
    pending = _pending(context)
    await update.effective_message.reply_html(
        render("upload_busy", file_name=pending.file_name if pending else ""))


async def timed_out(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    pending = context.user_data.pop("upload", None) if context.user_data is not None else None
    if isinstance(update, Update) and update.effective_chat is not None and pending:
        await context.bot.send_message(update.effective_chat.id,
                                       render("upload_cancelled", timeout=True),
                                       parse_mode="HTML")


async def _give_up(update: Update, context: ContextTypes.DEFAULT_TYPE, reason: str,
                   file_name: str | None = None) -> int:
    pending = context.user_data.pop("upload", None)
    file_name = file_name or (pending.file_name if pending else "")
    await _audit(update, context, "upload_refused", f"{file_name}: {reason}")
    await update.effective_message.reply_html(
        render("upload_refused", file_name=file_name, reason=reason))
    return ConversationHandler.END


async def _finish(update: Update, context: ContextTypes.DEFAULT_TYPE,
                  pending: PendingUpload) -> None:
    """Write the source and the document, reload, and report; undo when the reload refuses."""
    context.user_data.pop("upload", None)
    services = services_of(context)
    message = update.effective_message
    admin_id = update.effective_user.id
    root = services.settings.knowledge_dir
    policy_dir = root / "policy"
    sources_path = root / "sources.yaml"
    lock = context.application.bot_data.setdefault("upload_lock", asyncio.Lock())
    async with lock:
        knowledge = services.index.knowledge
        version_before = services.index.version
        try:
            target = policy_path(policy_dir, pending.slug)
            if target.exists() and not pending.overwrite:
                target = free_path(policy_dir, pending.slug)
        except UploadRefused as refused:
            await _give_up(update, context, refused.reason, pending.file_name)
            return
        assert pending.date is not None and pending.source is not None
        assert pending.category is not None
        source_id = new_source_id(pending.date,
                                  set(knowledge.sources) | source_ids_on_disk(sources_path))
        title = document_title(pending.converted, pending.file_name, pending.caption_title)
        publisher = pending.publisher or DEFAULT_PUBLISHER
        today = dt.datetime.now(KST).date()
        note = f"uploaded by admin {admin_id} on {today:%Y-%m-%d} from {pending.file_name}"
        markdown = policy_markdown(title, source_id, pending.date, pending.category,
                                   pending.converted.sections, note)
        entry = source_entry(source_id, pending.source, publisher, pending.date, note)
        # The converted file is checked as the loader will check it before anything is written.
        source = Source(source_id, pending.source, publisher, pending.date)
        try:
            split_passages(target, markdown, {**knowledge.sources, source_id: source},
                           knowledge.categories)
        except KnowledgeError as exc:
            await _give_up(update, context, f"변환한 문서가 형식 검사를 통과하지 못했습니다: {exc}",
                           pending.file_name)
            return
        try:
            written = write_upload(sources_path, entry, target, markdown)
        except OSError as exc:
            log.exception("upload %s not written", pending.file_name)
            await _give_up(update, context, f"파일을 쓰지 못했습니다 ({exc.strerror}).",
                           pending.file_name)
            return
        result = await services.reloader.reload(by=admin_id)
        if isinstance(result, ReloadFailed):
            written.undo()
            await _audit(update, context, "upload_failed",
                         f"{pending.file_name} -> {target.name}: {'; '.join(result.errors)}")
            await message.reply_html(render("upload_failed", file_name=pending.file_name,
                                            failure=result))
            return
    passages = [p for p in services.index.knowledge.passages
                if p.path.resolve() == target.resolve()]
    category = services.index.knowledge.categories.get(pending.category)
    await _audit(update, context, "upload_done",
                 f"{pending.file_name} -> policy/{target.name}, source {source_id}, "
                 f"{len(passages)} passages, version {services.index.version}")
    await message.reply_html(render(
        "upload_done", file_name=pending.file_name, name=target.name, title=title,
        passages=len(passages), source_id=source_id, source=source,
        category=category.ko if category else pending.category, old_version=version_before,
        new_version=services.index.version, overwritten=written.policy_before is not None))


def handlers() -> list[BaseHandler]:
    """The upload conversation: before the question handlers, private chats only."""
    private_document = (filters.Document.ALL & filters.ChatType.PRIVATE
                        & filters.UpdateType.MESSAGE)
    private_text = (filters.TEXT & ~filters.COMMAND & filters.ChatType.PRIVATE
                    & filters.UpdateType.MESSAGE)
    buttons = CallbackQueryHandler(got_button, pattern=r"^up:")
    with warnings.catch_warnings():
        # The topic and overwrite buttons belong to the conversation of the admin and chat,
        # not to one message; each carries the upload's token instead.
        warnings.filterwarnings("ignore", message=".*per_message=False.*",
                                category=PTBUserWarning)
        conversation = ConversationHandler(
            entry_points=[MessageHandler(private_document, received)],
            states={
                SOURCE: [MessageHandler(private_text, got_source)],
                DATE: [MessageHandler(private_text, got_date)],
                CATEGORY: [buttons],
                OVERWRITE: [buttons],
                ConversationHandler.TIMEOUT: [TypeHandler(Update, timed_out)],
            },
            fallbacks=[CommandHandler("cancel", cancel),
                       MessageHandler(private_document, busy)],
            per_chat=True, per_user=True, conversation_timeout=TIMEOUT_SECONDS,
            name="upload",
        )
    return [conversation, CallbackQueryHandler(stale_button, pattern=r"^up:")]

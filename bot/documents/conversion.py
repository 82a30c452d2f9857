"""Check a document and convert it to headed sections: Markdown, plain text, PDF or HWPX.

The checks come first (size, extension against content, encoding, encryption, zip bombs);
every refusal is an UploadRefused with a reason code and its details, which the admin reads
in words from bot/templates/<language>/upload_refusal.html.j2. Pure: no Telegram, no files
written (bot/documents/policy.py writes them).
"""

from __future__ import annotations

import codecs
import io
import logging
import re
import unicodedata
import warnings
import zipfile
from dataclasses import dataclass, replace
from typing import Any

import yaml

from index.knowledge import HEADING

log = logging.getLogger(__name__)


MAX_UPLOAD_BYTES = 10 * 1024 * 1024
# A document's text, pages and passages: enough for a long policy paper, not for a dump.
MAX_TEXT_CHARS = 400_000
MAX_PDF_PAGES = 300
MAX_HEADING_CHARS = 80
# HWPX is a zip: refuse archives that would unpack to far more than a document needs.
MAX_ZIP_ENTRIES = 2000
MAX_ZIP_UNPACKED = 200 * 1024 * 1024

# The kinds a file's content can be (`sniff`); their names are in upload_kind.html.j2.
EXTENSIONS = {".md": "text", ".txt": "text", ".pdf": "pdf", ".hwpx": "hwpx"}


class UploadRefused(Exception):
    """A file that is not taken, for the reason `code` ("too_big", "encrypted", ...) with its
    `details` (sizes, limits, the kind found): the admin reads it from the template
    upload_refusal.html.j2, which has a sentence for each code."""

    def __init__(self, code: str, **details: Any) -> None:
        self.code = code
        self.details = details
        super().__init__(f"{code} {details}" if details else code)


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
    name = last_component(file_name)
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
        raise UploadRefused("extension", extension=extension)
    actual = sniff(data)
    if actual != expected:
        raise UploadRefused("content", extension=extension, kind=actual)
    return expected


# --- conversion -----------------------------------------------------------------------------


def convert(file_name: str, data: bytes) -> Converted:
    """Check and convert a file to headed sections (blocking; run it in a thread)."""
    if not data:
        raise UploadRefused("empty")
    if len(data) > MAX_UPLOAD_BYTES:
        raise too_big(len(data))
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
        raise UploadRefused("no_text")
    if sum(len(s.text) for s in sections) > MAX_TEXT_CHARS:
        raise UploadRefused("too_long", limit=MAX_TEXT_CHARS)
    return replace(converted, sections=sections)


def too_big(size: int) -> UploadRefused:
    """A file over MAX_UPLOAD_BYTES, in megabytes: as found, and the limit."""
    return UploadRefused("too_big", megabytes=round(size / 1024 / 1024, 1),
                         limit=MAX_UPLOAD_BYTES // 1024 // 1024)


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 with a BOM, or CP949; never binary."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise UploadRefused("utf16") from exc
    else:
        if b"\x00" in data:
            raise UploadRefused("binary")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            try:
                text = data.decode("cp949")
            except UnicodeDecodeError as exc:
                raise UploadRefused("encoding") from exc
    controls = sum(1 for c in text if unicodedata.category(c) == "Cc" and c not in "\t\n\r\f")
    if controls > max(2, len(text) // 200):
        raise UploadRefused("control_characters")
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
                title = one_line(str(meta["title"]))
            text = text[match.end():]
    sections = [Section("", ())]
    for line in text.splitlines():
        heading = HEADING.match(line)
        if heading:
            sections.append(Section(one_line(heading.group(2)), ()))
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
                raise UploadRefused("encrypted", format="PDF") from exc
            if not opened:
                raise UploadRefused("encrypted", format="PDF")
        if len(reader.pages) > MAX_PDF_PAGES:
            raise UploadRefused("pages", pages=len(reader.pages), limit=MAX_PDF_PAGES)
        pages = [(page.extract_text() or "") for page in reader.pages]
    except UploadRefused:
        raise
    except Exception as exc:  # a broken PDF fails in many ways; none of them is ours to fix
        log.info("unreadable PDF: %s", exc)
        raise UploadRefused("unreadable", format="PDF") from exc
    lines = [[clean_line(line) for line in page.splitlines()] for page in pages]
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
                        text = clean_line(paragraph.text)
                        if text and len(text) <= MAX_HEADING_CHARS:
                            headings.append(text)
                text = document.text.plain()
            finally:
                document.close()
    except Exception as exc:  # python-hwpx raises its own errors and XML/zip ones
        log.info("unreadable HWPX: %s", exc)
        raise UploadRefused("unreadable", format="HWPX") from exc
    lines = [clean_line(re.sub(r"\t+", " | ", line.strip("\t"))) for line in text.splitlines()]
    return Converted("hwpx", _sections_from_lines(lines, headings))


def _check_hwpx_package(data: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            if len(infos) > MAX_ZIP_ENTRIES or sum(i.file_size for i in infos) > MAX_ZIP_UNPACKED:
                raise UploadRefused("unpacks_too_big")
            if any(i.flag_bits & 0x1 for i in infos):
                raise UploadRefused("encrypted", format="HWPX")
            names = set(archive.namelist())
            manifest = "META-INF/manifest.xml"
            if (manifest in names and archive.getinfo(manifest).file_size < 1024 * 1024
                    and b"encryption-data" in archive.read(manifest)):
                raise UploadRefused("encrypted_or_distribution")
            if not any(re.fullmatch(r"Contents/section\d+\.xml", n) for n in names):
                raise UploadRefused("no_body")
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:
        raise UploadRefused("not_a_zip") from exc


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
        line = clean_line(raw)
        is_heading = False
        if pending and line == pending[0]:
            pending.pop(0)
            is_heading = True
        elif use_look and looks_like_heading(line):
            is_heading = True
        if is_heading:
            heading = HEADING.match(line)
            sections.append(Section(one_line(heading.group(2) if heading else line), ()))
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


def clean_line(line: str) -> str:
    """One line of text: no control characters, no trailing blanks."""
    line = "".join(" " if unicodedata.category(c) == "Cc" and c != "\t" else c for c in line)
    return unicodedata.normalize("NFC", line).rstrip()


def one_line(text: str) -> str:
    return " ".join(clean_line(text).split()).lstrip("#").strip()


# --- names -------------------------------------------------------------------------------


def last_component(file_name: str) -> str:
    return re.split(r"[\\/]", unicodedata.normalize("NFC", file_name or ""))[-1]

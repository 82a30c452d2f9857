"""Write an uploaded document into the knowledge folder: a safe file name inside
knowledge/policy/, the policy Markdown (front matter, a section per heading, passages a message
can hold), its source appended to sources.yaml, and an undo for a reload that refuses them.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import yaml

from bot.documents.conversion import (
    Converted,
    Section,
    UploadRefused,
    last_component,
    one_line,
)
from index.knowledge import HEADING

MAX_SLUG_CHARS = 60
# A passage is sent whole as an answer; Telegram's message limit is 4096 characters.
MAX_PASSAGE_CHARS = 1500
DEFAULT_PUBLISHER = "관리자 업로드"


# --- names and places -----------------------------------------------------------------------


def slugify(file_name: str) -> str:
    """A file stem of lowercase ASCII letters, digits, Korean syllables and '-': no path
    separators, no leading dot, never empty."""
    name = last_component(file_name)
    stem = name.rsplit(".", 1)[0]
    slug = re.sub(r"[^a-z0-9가-힣]+", "-", stem.lower())
    slug = slug.strip("-")[:MAX_SLUG_CHARS].strip("-")
    return slug or "upload"


def policy_path(policy_dir: Path, slug: str) -> Path:
    """knowledge/policy/<slug>.md, checked to resolve to a file directly in the policy folder."""
    if not re.fullmatch(r"[a-z0-9가-힣][a-z0-9가-힣-]*", slug):
        raise UploadRefused("bad_name")
    target = policy_dir / f"{slug}.md"
    if target.resolve().parent != policy_dir.resolve() or target.is_symlink():
        raise UploadRefused("outside_folder")
    return target


def free_path(policy_dir: Path, slug: str) -> Path:
    """The first of <slug>.md, <slug>-2.md, <slug>-3.md … that does not exist yet."""
    target = policy_path(policy_dir, slug)
    number = 2
    while target.exists():
        target = policy_path(policy_dir, f"{slug[:MAX_SLUG_CHARS - 4]}-{number}")
        number += 1
    return target


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
    return f"\n# {one_line(note)}\n{body}"


def document_title(converted: Converted, file_name: str, caption_title: str | None) -> str:
    """The caption's title, the document's own, its first heading or line, or its file name."""
    for candidate in (caption_title, converted.title, converted.first_line):
        if candidate and one_line(candidate):
            title = one_line(candidate)
            return title if len(title) <= 100 else title[:99] + "…"
    stem = last_component(file_name).rsplit(".", 1)[0]
    return one_line(stem.replace("_", " ")) or "업로드 문서"


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
    out = [f"---\n# {one_line(note)}\n{meta}---"]
    if (len(sections) > 1 and not sections[0].heading
            and one_line(sections[0].text) == title):
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

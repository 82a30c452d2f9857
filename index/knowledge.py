"""Load and validate the knowledge base: FAQ entries, policy passages, sources, glossary.

Everything here is read from files under the knowledge folder and checked before anything is
indexed, so that a broken file is reported with its path and line and never served.
One module over 400 lines on purpose: every file of the knowledge base read and checked in one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from index.reading import (
    KnowledgeError,
    KnowledgeInvalid,
    ids_written_in,
    line_of,
    read_yaml,
    required_text,
)

# Ids travel in Telegram button data (64 bytes at most, with a short prefix).
ENTRY_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,59}$")
FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.DOTALL)
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


@dataclass(frozen=True)
class Source:
    id: str
    title: str
    publisher: str
    date: dt.date


@dataclass(frozen=True)
class Category:
    key: str
    ko: str
    en: str


@dataclass(frozen=True)
class FaqEntry:
    id: str
    question: str
    alternates: tuple[str, ...]
    answer: str
    answer_en: str | None
    category: str
    sources: tuple[str, ...]
    as_of: dt.date
    path: Path
    line: int

    @property
    def title(self) -> str:
        return self.question

    def searchable_text(self) -> str:
        parts = [self.question, *self.alternates, self.answer]
        if self.answer_en:
            parts.append(self.answer_en)
        return "\n".join(parts)


@dataclass(frozen=True)
class Passage:
    """One headed section of a policy document."""

    id: str
    document_title: str
    heading: str
    text: str
    category: str
    sources: tuple[str, ...]
    as_of: dt.date
    path: Path
    line: int

    @property
    def title(self) -> str:
        return f"{self.document_title} — {self.heading}" if self.heading else self.document_title

    @property
    def answer(self) -> str:
        return self.text

    @property
    def answer_en(self) -> None:
        return None

    def searchable_text(self) -> str:
        return f"{self.document_title}\n{self.heading}\n{self.text}"


Document = FaqEntry | Passage


@dataclass(frozen=True)
class Glossary:
    terms: tuple[str, ...] = ()
    synonyms: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class KnowledgeBase:
    """Everything loaded from one knowledge folder, validated."""

    root: Path
    version: str
    sources: dict[str, Source]
    categories: dict[str, Category]
    entries: tuple[FaqEntry, ...]
    passages: tuple[Passage, ...]
    glossary: Glossary
    # The ids of FAQ entries that could not be read (a broken file, an invalid entry), each
    # with the error that lost it: what a file referring to them follows from. Empty in a
    # valid knowledge base.
    lost_entries: dict[str, KnowledgeError] = field(default_factory=dict)

    @property
    def documents(self) -> tuple[Document, ...]:
        return (*self.entries, *self.passages)

    def stale(self, today: dt.date, max_age_days: int) -> list[Document]:
        """Documents whose as-of date is older than `max_age_days`."""
        limit = today - dt.timedelta(days=max_age_days)
        return [doc for doc in self.documents if doc.as_of < limit]


def _date(node: dict[str, Any], key: str, path: Path, what: str) -> dt.date:
    value = node.get(key)
    if value is None:
        raise KnowledgeError(path, line_of(node), f"{what} has no {key} date")
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        msg = f"{what}: {key} {value!r} is not a date (YYYY-MM-DD)"
        raise KnowledgeError(path, line_of(node), msg) from exc


def _source_ids(
    node: dict[str, Any], path: Path, what: str, sources: dict[str, Source]
) -> tuple[str, ...]:
    value = node.get("sources", node.get("source"))
    ids = [value] if isinstance(value, str) else value
    if not ids or not isinstance(ids, list):
        raise KnowledgeError(path, line_of(node), f"{what} has no sources")
    unknown = [str(i) for i in ids if str(i) not in sources]
    if unknown:
        known = ", ".join(sources) or "none"
        msg = f"{what}: unknown source {', '.join(unknown)} (sources.yaml has {known})"
        raise KnowledgeError(path, line_of(node), msg)
    return tuple(str(i) for i in ids)


def _strings(value: Any, path: Path, line: int | None, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        raise KnowledgeError(path, line, f"{what} must be a list of text")
    return tuple(str(v).strip() for v in value if str(v).strip())


# --- the files -------------------------------------------------------------------------------


def _entries(path: Path, what: str, expected: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The (key, mapping) pairs of a file that maps keys to mappings (sources, categories)."""
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise KnowledgeError(path, None, f"must map {what} keys to {expected}")
    for key, node in data.items():
        if key == "__line__":
            continue
        if not isinstance(node, dict):
            raise KnowledgeError(path, line_of(data), f"{what} {key} must have {expected}")
        yield str(key), node


def _load_sources(path: Path) -> dict[str, Source]:
    return {
        key: Source(id=key, title=required_text(node, "title", path, f"source {key}"),
                    publisher=required_text(node, "publisher", path, f"source {key}"),
                    date=_date(node, "date", path, f"source {key}"))
        for key, node in _entries(path, "source", "title, publisher and date")
    }


def _load_categories(path: Path) -> dict[str, Category]:
    return {
        key: Category(key, required_text(node, "ko", path, f"category {key}"),
                      required_text(node, "en", path, f"category {key}"))
        for key, node in _entries(path, "category", "ko and en labels")
    }


def _load_glossary(path: Path) -> Glossary:
    data = read_yaml(path) or {}
    if not isinstance(data, dict):
        raise KnowledgeError(path, None, "must be a mapping with terms and synonyms")
    line = line_of(data)
    synonyms_node = data.get("synonyms") or {}
    if not isinstance(synonyms_node, dict):
        raise KnowledgeError(path, line, "synonyms must map a term to its aliases")
    synonyms = {
        str(term): _strings(aliases, path, line_of(synonyms_node), f"synonyms of {term}")
        for term, aliases in synonyms_node.items()
        if term != "__line__"
    }
    return Glossary(terms=_strings(data.get("terms"), path, line, "terms"), synonyms=synonyms)


def _load_faq_file(
    path: Path, sources: dict[str, Source], categories: dict[str, Category],
    errors: list[KnowledgeError], lost: dict[str, KnowledgeError],
) -> list[FaqEntry]:
    """The valid entries of one FAQ file; each invalid entry adds an error and is skipped,
    its id added to `lost` with that error. A file that cannot be read at all adds the ids
    written in it."""
    try:
        data = read_yaml(path)
        if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
            raise KnowledgeError(path, line_of(data), "an FAQ file needs a list of entries")
    except KnowledgeError as exc:
        errors.append(exc)
        for entry_id in ids_written_in(path):
            lost.setdefault(entry_id, exc)
        return []
    entries = []
    for node in data["entries"]:
        try:
            entries.append(_faq_entry(node, path, data, sources, categories))
        except KnowledgeError as exc:
            errors.append(exc)
            if isinstance(node, dict) and node.get("id"):
                lost.setdefault(str(node["id"]), exc)
    return entries


def _faq_entry(node: Any, path: Path, file_node: dict[str, Any], sources: dict[str, Source],
               categories: dict[str, Category]) -> FaqEntry:
    if not isinstance(node, dict):
        raise KnowledgeError(path, line_of(file_node), "each entry must be a mapping")
    raw_id = node.get("id")
    what = f"entry {raw_id!r}" if raw_id else "an entry"
    if not raw_id or not ENTRY_ID.match(str(raw_id)):
        msg = f"{what}: id must be 1-60 lowercase letters, digits and '-'"
        raise KnowledgeError(path, line_of(node), msg)
    category = str(node.get("category") or file_node.get("category") or "")
    if category not in categories:
        msg = f"{what}: category {category!r} is not in categories.yaml"
        raise KnowledgeError(path, line_of(node), msg)
    answer_en = node.get("answer_en")
    return FaqEntry(
        id=str(raw_id),
        question=required_text(node, "question", path, what),
        alternates=_strings(node.get("alternates"), path, line_of(node), f"{what}: alternates"),
        answer=required_text(node, "answer", path, what),
        answer_en=str(answer_en).strip() if answer_en else None,
        category=category,
        sources=_source_ids(node, path, what, sources),
        as_of=_date(node, "as_of", path, what),
        path=path,
        line=line_of(node) or 1,
    )


def split_passages(path: Path, text: str, sources: dict[str, Source],
                   categories: dict[str, Category]) -> list[Passage]:
    """Split a policy Markdown document into passages, one per heading."""
    match = FRONT_MATTER.match(text)
    if not match:
        raise KnowledgeError(path, 1, "a policy document starts with front matter (--- ... ---)")
    meta = read_yaml(path, match.group(1), line_offset=1)
    if not isinstance(meta, dict):
        raise KnowledgeError(path, 2, "front matter must be a mapping with title, sources, as_of")
    meta["__line__"] = 1
    what = "front matter"
    title = required_text(meta, "title", path, what)
    ids = _source_ids(meta, path, what, sources)
    as_of = _date(meta, "as_of", path, what)
    category = str(meta.get("category") or "")
    if category not in categories:
        raise KnowledgeError(path, 1, f"category {category!r} is not in categories.yaml")

    body_start = text[: match.end()].count("\n") + 1
    sections: list[tuple[str, int, list[str]]] = [("", body_start, [])]
    for number, line in enumerate(text[match.end():].splitlines(), start=body_start):
        heading = HEADING.match(line)
        if heading:
            sections.append((heading.group(2), number, []))
        else:
            sections[-1][2].append(line)

    passages = []
    for heading, line_no, lines in sections:
        body = "\n".join(lines).strip()
        if not body:
            continue
        passages.append(
            Passage(
                id=f"{path.stem}#{len(passages) + 1}",
                document_title=title,
                heading=heading,
                text=body,
                category=category,
                sources=ids,
                as_of=as_of,
                path=path,
                line=line_no,
            )
        )
    if not passages:
        raise KnowledgeError(path, body_start, "the document has no text under its headings")
    return passages


def knowledge_files(root: Path) -> list[Path]:
    """Every file that makes up the knowledge base, in a stable order."""
    # eligibility.yaml: the guided check's rules, which the bot reads (bot/eligibility/).
    names = [root / n for n in ("sources.yaml", "categories.yaml", "glossary.yaml",
                                "eligibility.yaml")]
    return [
        *(p for p in names if p.exists()),
        *sorted((root / "faq").glob("*.yaml")),
        *sorted((root / "policy").glob("*.md")),
        # The decision's fitted models and their examples (bot/answering/model.py).
        *sorted((root / "model").glob("*.json")),
        *sorted((root / "model").glob("*.yaml")),
    ]


def knowledge_version(files: Iterable[Path], root: Path) -> str:
    """A short content hash: the same files give the same version on every machine."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:12]


def load_knowledge(root: Path | str) -> KnowledgeBase:
    """Read and validate every file under `root`; raise KnowledgeInvalid listing all errors."""
    errors: list[KnowledgeError] = []
    knowledge = read_knowledge(Path(root), errors)
    if knowledge is None or errors:
        raise KnowledgeInvalid(errors)
    return knowledge


def read_knowledge(root: Path, errors: list[KnowledgeError]) -> KnowledgeBase | None:
    """What can be read under `root`, every problem added to `errors` (so that a reader of
    further files, such as the bot's eligibility rules, can add its own and all are listed
    at once). None when `root` is no folder; refuse the result when `errors` is not empty."""
    if not root.is_dir():
        errors.append(KnowledgeError(root, None, "knowledge folder not found"))
        return None

    def attempt(loader: Any, *args: Any, default: Any) -> Any:
        try:
            return loader(*args)
        except KnowledgeError as exc:
            errors.append(exc)
            return default

    for required in ("sources.yaml", "categories.yaml"):
        if not (root / required).exists():
            errors.append(KnowledgeError(root / required, None, "file is missing"))
    sources: dict[str, Source] = {}
    categories: dict[str, Category] = {}
    if not errors:
        sources = attempt(_load_sources, root / "sources.yaml", default={})
        categories = attempt(_load_categories, root / "categories.yaml", default={})
    glossary = Glossary()
    if (root / "glossary.yaml").exists():
        glossary = attempt(_load_glossary, root / "glossary.yaml", default=Glossary())

    entries: list[FaqEntry] = []
    lost: dict[str, KnowledgeError] = {}
    for path in sorted((root / "faq").glob("*.yaml")):
        entries.extend(_load_faq_file(path, sources, categories, errors, lost))
    passages: list[Passage] = []
    for path in sorted((root / "policy").glob("*.md")):
        text = attempt(lambda p: p.read_text(encoding="utf-8"), path, default=None)
        if text is not None:
            passages.extend(attempt(split_passages, path, text, sources, categories, default=[]))

    seen: dict[str, FaqEntry] = {}
    for entry in entries:
        if entry.id in seen:
            first = seen[entry.id]
            msg = f"duplicate id {entry.id!r} (first at {first.path}:{first.line})"
            errors.append(KnowledgeError(entry.path, entry.line, msg))
        seen.setdefault(entry.id, entry)
    if not entries and not passages and not errors:
        errors.append(KnowledgeError(root, None, "no FAQ entries or policy documents found"))

    files = knowledge_files(root)
    return KnowledgeBase(
        root=root,
        version=knowledge_version(files, root),
        sources=sources,
        categories=categories,
        entries=tuple(entries),
        passages=tuple(passages),
        glossary=glossary,
        lost_entries={i: e for i, e in lost.items() if i not in seen},
    )

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
from typing import Annotated, Any

from pydantic import AfterValidator, AliasChoices, BeforeValidator, Field, ValidationInfo
from pydantic_core import PydanticCustomError

from index.reading import (
    Date,
    KnowledgeError,
    KnowledgeInvalid,
    LineText,
    Names,
    Shape,
    Text,
    Texts,
    context_of,
    ids_written_in,
    line_of,
    read_yaml,
    refuse,
    texts,
    validated,
    without_line,
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
    # What an answer's source line calls it (Korean, English); without one, publisher and title.
    short_ko: str | None = None
    short_en: str | None = None
    url: str | None = None  # where the public can read it: a button under the answer


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


# --- the shapes of the files -----------------------------------------------------------------


def _known_sources(ids: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
    if not ids:
        raise PydanticCustomError("blank", "is empty")
    sources = context_of(info, "sources")
    unknown = [i for i in ids if i not in sources]
    if unknown:
        raise refuse("unknown source {unknown} (sources.yaml has {known})",
                     unknown=", ".join(unknown), known=", ".join(sources) or "none")
    return ids


def _known_category(category: str, info: ValidationInfo) -> str:
    if category not in context_of(info, "categories"):
        raise refuse("category {category} is not in categories.yaml", category=repr(category))
    return category


# The sources a document cites (`sources: [S1, S2]`, or `source: S1`), each in sources.yaml.
SourceIds = Annotated[Names, AfterValidator(_known_sources),
                      Field(validation_alias=AliasChoices("sources", "source"))]
CategoryKey = Annotated[str, BeforeValidator(lambda v: "" if v is None else str(v)),
                        AfterValidator(_known_category)]


def _short(value: Any) -> dict[str, str]:
    """A source's short names, {ko: …, en: …}: what an answer's source line calls it."""
    if not value:
        return {}
    if not isinstance(value, dict) or not set(without_line(value)) <= {"ko", "en"}:
        raise refuse("short must be {ko: …, en: …}")
    return {language: " ".join(str(name).split())
            for language, name in without_line(value).items() if name}


def _url(value: Any) -> str | None:
    """Where the public can read a source: an https address (a button under the answer)."""
    if value is None:
        return None
    if not (isinstance(value, str) and value.startswith("https://") and " " not in value):
        raise refuse("url {url} is not an https address", url=repr(value))
    return value


class SourceShape(Shape):
    title: LineText
    publisher: LineText
    date: Date
    short: Annotated[dict[str, str], BeforeValidator(_short), Field(default_factory=dict)]
    url: Annotated[str | None, BeforeValidator(_url)] = None


class CategoryShape(Shape):
    ko: LineText
    en: LineText


def _synonyms(value: Any) -> dict[str, tuple[str, ...]]:
    if not value:
        return {}
    if not isinstance(value, dict):
        raise refuse("synonyms must map a term to its aliases")
    synonyms = {}
    for term, aliases in without_line(value).items():
        try:
            synonyms[str(term)] = texts(aliases)
        except PydanticCustomError:
            raise refuse("synonyms of {term} must be a list of text", term=str(term)) from None
    return synonyms


class GlossaryShape(Shape):
    terms: Texts = ()
    synonyms: Annotated[dict[str, tuple[str, ...]], BeforeValidator(_synonyms),
                        Field(default_factory=dict)]


def _entry_id(value: Any) -> str:
    if not ENTRY_ID.match(str(value)):
        raise refuse("id must be 1-60 lowercase letters, digits and '-'")
    return str(value)


class FaqEntryShape(Shape):
    id: Annotated[str, BeforeValidator(_entry_id)]
    question: LineText
    alternates: Texts = ()
    answer: Text
    answer_en: Annotated[str | None, BeforeValidator(lambda v: str(v).strip() if v else None)
                         ] = None
    category: CategoryKey  # the entry's, else its file's
    sources: SourceIds
    as_of: Date


class FrontMatterShape(Shape):
    """The front matter of a policy document."""

    title: LineText
    sources: SourceIds
    as_of: Date
    category: CategoryKey = ""


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
    sources = {}
    for key, node in _entries(path, "source", "title, publisher and date"):
        shape = validated(SourceShape, node, path, f"source {key}")
        sources[key] = Source(key, shape.title, shape.publisher, shape.date,
                              short_ko=shape.short.get("ko"), short_en=shape.short.get("en"),
                              url=shape.url)
    return sources


def _load_categories(path: Path) -> dict[str, Category]:
    categories = {}
    for key, node in _entries(path, "category", "ko and en labels"):
        shape = validated(CategoryShape, node, path, f"category {key}")
        categories[key] = Category(key, shape.ko, shape.en)
    return categories


def _load_glossary(path: Path) -> Glossary:
    data = read_yaml(path) or {}
    if not isinstance(data, dict):
        raise KnowledgeError(path, None, "must be a mapping with terms and synonyms")
    shape = validated(GlossaryShape, data, path, "")
    return Glossary(terms=shape.terms, synonyms=shape.synonyms)


def _load_faq_file(
    path: Path, sources: dict[str, Source], categories: dict[str, Category],
    errors: list[KnowledgeError], lost: dict[str, KnowledgeError],
) -> list[FaqEntry]:
    """The valid entries of one FAQ file; each invalid entry adds its errors and is skipped,
    its id added to `lost` with the first. A file that cannot be read at all adds the ids
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
    context = {"sources": sources, "categories": categories}
    for node in data["entries"]:
        if not isinstance(node, dict):
            errors.append(KnowledgeError(path, line_of(data), "each entry must be a mapping"))
            continue
        raw_id = node.get("id")
        what = f"entry {raw_id!r}" if raw_id else "an entry"
        try:
            shape = validated(FaqEntryShape,
                              {**node, "category": node.get("category") or data.get("category")},
                              path, what, context)
        except KnowledgeInvalid as exc:
            errors.extend(exc.errors)
            if raw_id:
                lost.setdefault(str(raw_id), exc.errors[0])
            continue
        entries.append(FaqEntry(**shape.model_dump(), path=path, line=line_of(node) or 1))
    return entries


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
    shape = validated(FrontMatterShape, meta, path, "front matter",
                      {"sources": sources, "categories": categories})
    title, ids, as_of, category = shape.title, shape.sources, shape.as_of, shape.category

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
        except KnowledgeInvalid as exc:
            errors.extend(exc.errors)
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

"""What an admin's caption says about a document: source, publisher, date, topic and title.

`출처: 산업부 보도자료, 날짜: 2026-01-15, 분류: fund` or `source: …; date: …; category: …`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from bot.documents.conversion import one_line
from index.knowledge import Category

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
        source = source_without_date(source)
    return CaptionInfo(source=source or None,
                       publisher=clean_source(found.get("publisher", "")) or None,
                       date=date, category=match_category(found.get("category"), categories),
                       title=one_line(found.get("title", ""))[:200] or None)


def clean_source(text: str) -> str:
    """A source title on one line, without the separators and quotes around it."""
    return one_line(text).strip(" ,;·-「」『』\"'“”")[:200]


def source_without_date(text: str) -> str:
    """The source named in text that may also give the date (`산업부 보도자료 2026-01-15`)."""
    return clean_source(_DATE.sub("", text))


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

"""Render what the bot says from the templates in bot/templates/<language>/.

Templates are written for Telegram's HTML parse mode with autoescape on, so user text and
knowledge text can never break the markup. The terminal and `maxbot ask` show the same reply
as plain text.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from pydantic import BaseModel

from bot.answering import Answer
from bot.answering.wording import as_said, asks_yes_or_no
from bot.language import LANGUAGES
from bot.particles import particle, with_particle
from index import FaqEntry, KnowledgeBase
from index.analyzer import detect_language
from index.knowledge import Source
from index.terms import HANGUL

_TAG = re.compile(r"<[^>]+>")
_BLANK_LINES = re.compile(r"\n{3,}")


KST = ZoneInfo("Asia/Seoul")


def _kdate(value: dt.date) -> str:
    return f"{value.year}.{value.month:02d}.{value.day:02d}."


def _kdatetime(value: dt.datetime) -> str:
    """A moment in Korean time (the database gives aware moments: bot.storage.models)."""
    local = value.astimezone(KST)
    return f"{_kdate(local)} {local:%H:%M}"


def _sentence(text: str) -> str:
    """Text as a heading or a table cell opens: its first letter a capital (Korean has none)."""
    return text[:1].upper() + text[1:]


def question_in(entry: Any, language: str) -> str:
    """An FAQ entry's (or a passage's) question in `language`: for English, the first of the
    entry's listed phrasings written in English that is a question, else the first written in
    English (alternates are also keywords: "KEIT", "alliance goals" read oddly on a button)."""
    if language == "en" and isinstance(entry, FaqEntry):
        english = [a for a in entry.alternates
                   if detect_language(a) == "en" and not HANGUL.search(a)]
        return next((a for a in english if a.rstrip().endswith("?")),
                    english[0] if english else entry.question)
    return entry.question


def source_name(source: Source, language: str) -> str:
    """What a source is called in `language`: its short name, else its publisher."""
    return (source.short_en if language == "en" else source.short_ko) or source.publisher


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("bot", "templates"),
        autoescape=select_autoescape(["j2", "html"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=StrictUndefined,
    )
    env.filters["kdate"] = _kdate
    env.filters["kdatetime"] = _kdatetime
    # {{ n | josa("으로") }} gives "3으로"; {{ n | particle("으로") }} the particle alone, for
    # after a closing tag: <code>{{ v }}</code>{{ v | particle("으로") }}.
    env.filters["josa"] = with_particle
    env.filters["particle"] = particle
    env.filters["question_in"] = question_in
    env.filters["as_said"] = as_said  # {{ answer_text | as_said(yes_or_no) }}
    # English labels are lower case, as a column's cells read; {{ x | sentence }} opens a
    # heading or a cell with a capital.
    env.filters["sentence"] = _sentence
    # {{ label("question:answered", language, "followup_labels") }}: a label template's word
    # in a page made of several (the HTML report).
    env.globals["label"] = label
    return env


def render(template_name: str, language: str = "ko", **context: Any) -> str:
    """Render a template (e.g. "answer") in `language`, tidy blank lines, return HTML."""
    env = _environment()
    lang = language if language in LANGUAGES else "ko"
    template = env.get_template(f"{lang}/{template_name}.html.j2")
    text = template.render(**context)
    return _BLANK_LINES.sub("\n\n", text).strip()


def label(kind: str, language: str = "ko", template: str = "buttons", **context: Any) -> str:
    """A button's label, from the labels template `template` in `language` (plain text:
    buttons show no markup)."""
    return to_plain_text(render(template, language, kind=kind, **context))


class Command(BaseModel):
    """One entry of the command menu: /command, what follows it in /help, what it does."""

    command: str
    description: str
    usage: str = ""


class CommandMenu(BaseModel):
    """The commands by who may use them (bot/templates/<language>/commands.yaml)."""

    user: list[Command]
    desk: list[Command]
    admin: list[Command]


@lru_cache(maxsize=len(LANGUAGES))
def command_menu(language: str = "ko") -> CommandMenu:
    """The command menu in `language` (Korean for any language it is not written in)."""
    lang = language if language in LANGUAGES else "ko"
    path = Path(__file__).resolve().parent / "templates" / lang / "commands.yaml"
    return CommandMenu.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def render_answer(answer: Answer, knowledge: KnowledgeBase, reference: int | None = None,
                  queued: bool = False, terminal: bool = False, repeat: bool = False) -> str:
    """The reply to a question, as Telegram HTML.

    reference: the follow-up's number when the question was queued for the secretariat;
    queued: it was queued but has no number yet (kept in the spool while the database is away);
    terminal: asked in `maxbot ask` or `maxbot chat`, which send nothing to the secretariat;
    repeat: the user may have had this reply already (the bot stopped while sending it), which
    the reply then says.
    """
    reply = _render_reply(answer, knowledge, reference, queued, terminal)
    return maybe_repeat(reply, repeat, answer.language)


def maybe_repeat(html: str, repeat: bool, language: str = "ko") -> str:
    """A message as sent again after a crash left unknown whether it went out: it opens
    with a line saying it may be a repeat (bot/delivery/once.py)."""
    return render("repeat", language, reply=Markup(html)) if repeat else html


def _render_reply(answer: Answer, knowledge: KnowledgeBase, reference: int | None,
                  queued: bool, terminal: bool) -> str:
    if answer.parts:
        parts = [{"question": p.question, "document": p.document,
                  "yes_or_no": asks_yes_or_no(p.question),
                  "sources": [knowledge.sources[s] for s in p.document.sources]
                  if p.document else []} for p in answer.parts]
        return render("answer_parts", answer.language, parts=parts, reference=reference,
                      queued=queued, terminal=terminal, unanswered=answer.followup)
    if answer.status == "answered" and answer.document is not None:
        document = answer.document
        sources = [knowledge.sources[s] for s in document.sources]
        return render("answer", answer.language, document=document, sources=sources,
                      suggestions=answer.suggestions,
                      yes_or_no=asks_yes_or_no(answer.question))
    if answer.status == "unanswered":
        return render("unanswered", answer.language, reference=reference, queued=queued,
                      terminal=terminal, suggestions=answer.suggestions)
    if answer.status == "smalltalk":
        return render(f"smalltalk_{answer.intent}", answer.language)
    return render("off_topic", answer.language)


def said_text(answer: Answer) -> str:
    """What a reply gives as the answer, as plain text: each served document's answer as the
    reply says it (in English where it has one, to a question in English), without the source
    line, the date of the information or the related questions. A fact is checked against
    this: the source line's date (the press release of 12.04) or a related question's words
    are no answer to "간담회 언제였어?"."""
    served = answer.parts or ((answer,) if answer.status == "answered" else ())
    texts = []
    for part in served:
        document = part.document
        if document is None:
            continue
        text = ((document.answer_en or document.answer) if answer.language == "en"
                else document.answer)
        texts.append(as_said(text, asks_yes_or_no(part.question)))
    return to_plain_text("\n".join(texts))


def to_plain_text(telegram_html: str) -> str:
    """What a user reads: the HTML without its tags, entities decoded."""
    return html.unescape(_TAG.sub("", telegram_html))

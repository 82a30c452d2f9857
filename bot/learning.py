"""The knowledge base learns from real questions, with an admin deciding every change.

Suggested phrasings: a wording users asked that an FAQ entry answers but does not list
(declined, then the asker pressed that entry's button; answered and rated 👍; declined, then
asked again in other words and answered within minutes). Accepting one writes it as an
alternate into the entry's file, keeping the file's comments and order, and the knowledge is
validated and served again; a rejected one is never proposed again.

FAQ drafts: a secretariat answer written to knowledge/review/ (which is never loaded as live
knowledge); approving one moves it into knowledge/faq/ and serves it.

Every change to the knowledge folder goes through `refresh`: the running bot's reload, or in
the command line a validation that makes the new version the one every bot serves. When it
refuses, the file is put back as it was.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import logging
import re
import shutil
import unicodedata
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import yaml
from ruamel.yaml import YAML
from sqlalchemy.exc import SQLAlchemyError

from bot.followups import near_misses
from bot.storage.database import Database
from bot.storage.models import (
    Question,
    QuestionStatus,
    SignalKind,
    SuggestionStatus,
    utcnow,
)
from bot.storage.records import FollowUpCase
from bot.storage.suggestions import (
    AskedQuestion,
    SignalRecord,
    SuggestedPhrasing,
    asked_since,
    decide_suggestion,
    proposed_suggestions,
    record_signals,
    reopen_suggestion,
)
from index import FaqEntry, KnowledgeBase, KnowledgeIndex

log = logging.getLogger(__name__)

# Statuses of a question the bot did not answer (what a suggestion button follows).
DECLINED = (QuestionStatus.UNANSWERED, QuestionStatus.OFF_TOPIC)
# A declined question followed by an answered one this soon is taken as its rephrasing.
REPHRASED_WITHIN = dt.timedelta(minutes=5)
# How far back /suggestions looks for rephrasings (each is stored once it is found).
REPHRASINGS_LOOKBACK = dt.timedelta(days=30)
# A wording longer than this is a message, not a phrasing to list.
MAX_WORDING_CHARS = 120

# Serve the knowledge folder as it now is: () when served, else its errors (file:line each).
Refresh = Callable[[], Awaitable[tuple[str, ...]]]


def phrasing_key(text: str) -> str:
    """What near-identical wordings share: letters and digits only, case and width folded
    ("펀드 규모는?" and "펀드규모는" are one wording)."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(c for c in folded if c.isalnum())


def _wording(text: str) -> str:
    return " ".join(text.split())


def _listed_keys(entry: FaqEntry) -> set[str]:
    return {phrasing_key(p) for p in (entry.question, *entry.alternates)}


def _entry(knowledge: KnowledgeBase, entry_id: str | None) -> FaqEntry | None:
    return next((e for e in knowledge.entries if e.id == entry_id), None)


def signal_of(question: Question | AskedQuestion, entry: FaqEntry, kind: SignalKind
              ) -> SignalRecord | None:
    """The signal a question gives for `entry`, or None when its wording says nothing new (the
    entry lists it already, or it is too long or too short to be a phrasing)."""
    wording = _wording(question.text)
    key = phrasing_key(wording)
    if len(key) < 2 or len(wording) > MAX_WORDING_CHARS or key in _listed_keys(entry):
        return None
    return SignalRecord(entry.id, key, wording, question.id, question.person_id, kind,
                        question.asked_at)


def rephrasings(questions: list[AskedQuestion], knowledge: KnowledgeBase
                ) -> list[SignalRecord]:
    """Declined questions followed, within REPHRASED_WITHIN and with nothing answered in
    between, by the same asker's answered question in the same chat: their wordings mean
    that answer's entry. `questions` come each asker's in each chat together, in order."""
    entries = {e.id: e for e in knowledge.entries}
    found = []
    for i, later in enumerate(questions):
        entry = entries.get(later.entry_id) if later.status == QuestionStatus.ANSWERED else None
        if entry is None:
            continue
        for j in range(i - 1, -1, -1):  # back to the last answered one, or a few minutes
            earlier = questions[j]
            if ((earlier.person_id, earlier.chat_id) != (later.person_id, later.chat_id)
                    or earlier.status not in DECLINED
                    or later.asked_at - earlier.asked_at > REPHRASED_WITHIN):
                break
            if (signal := signal_of(earlier, entry, SignalKind.REPHRASED)) is not None:
                found.append(signal)
    return found


async def note_signal(database: Database, question: Question, knowledge: KnowledgeBase,
                      entry_id: str, kind: SignalKind) -> None:
    """Store what a button press says about a question's wording (pressed, liked); a
    database that is away loses the signal, never the press."""
    entry = _entry(knowledge, entry_id)
    signal = signal_of(question, entry, kind) if entry is not None else None
    if signal is None:
        return
    try:
        async with database.session() as session:
            await record_signals(session, [signal])
    except SQLAlchemyError:  # a hint lost: the user's press has done its work all the same
        log.warning("%s signal of question %s not stored (database unavailable)", kind,
                    question.id)


async def suggestions_by_entry(database: Database, knowledge: KnowledgeBase,
                               now: dt.datetime | None = None
                               ) -> list[tuple[FaqEntry, list[SuggestedPhrasing]]]:
    """The proposed wordings per entry, entries with the most asked first: rephrasings found
    since the last look are stored first. Wordings the entry lists by now are left out."""
    since = (now or utcnow()) - REPHRASINGS_LOOKBACK
    async with database.session() as session:
        asked = await asked_since(session, since)
        # A month of questions: off the event loop.
        found = await asyncio.to_thread(rephrasings, asked, knowledge)
        await record_signals(session, found)
        proposed = await proposed_suggestions(session)
    grouped: dict[str, list[SuggestedPhrasing]] = defaultdict(list)
    for suggested in proposed:
        entry = _entry(knowledge, suggested.suggestion.entry_id)
        if entry is not None and suggested.suggestion.key not in _listed_keys(entry):
            grouped[entry.id].append(suggested)
    return sorted(((_entry(knowledge, entry_id), listed)
                   for entry_id, listed in grouped.items()),
                  key=lambda pair: -sum(s.count for s in pair[1]))


# --- writing FAQ files ------------------------------------------------------------------------


def _round_trip() -> YAML:
    """ruamel's round-trip mode, set to the layout of our FAQ files: every file under
    knowledge/faq/ loads and dumps back byte for byte (tests/test_learning.py)."""
    writer = YAML()
    writer.indent(mapping=2, sequence=4, offset=2)
    writer.width = 4096  # never rewrap a long line
    writer.preserve_quotes = True
    return writer


@dataclass(frozen=True)
class FileEdit:
    """A change to one knowledge file, and how to take it back."""

    path: Path
    before: str | None  # None: the file did not exist

    def undo(self) -> None:
        if self.before is None:
            self.path.unlink(missing_ok=True)
        else:
            self.path.write_text(self.before, encoding="utf-8")


def add_alternate(path: Path, entry_id: str, wording: str) -> FileEdit | None:
    """Write `wording` as the last alternate of the entry in its FAQ file, comments, order and
    layout kept; None when the entry lists it already (or is not in the file)."""
    before = path.read_text(encoding="utf-8")
    writer = _round_trip()
    data = writer.load(before)
    entry = next((e for e in data.get("entries") or () if e.get("id") == entry_id), None)
    if entry is None:
        return None
    alternates = entry.get("alternates")
    if alternates is None:
        entry["alternates"] = alternates = []
    if phrasing_key(wording) in {phrasing_key(str(a)) for a in (entry["question"], *alternates)}:
        return None
    alternates.append(wording)
    out = io.StringIO()
    writer.dump(data, out)
    path.write_text(out.getvalue(), encoding="utf-8")
    return FileEdit(path, before)


@dataclass(frozen=True)
class Decision:
    """What came of accepting or rejecting a suggestion (or approving a draft).

    outcome: accepted | rejected | approved | discarded | missing (no such suggestion or
    draft) | decided (someone decided before) | invalid (the knowledge refused the change;
    `errors` say why, and nothing was changed)."""

    outcome: str
    wording: str = ""
    entry_id: str = ""
    path: Path | None = None
    errors: tuple[str, ...] = ()


async def accept_suggestion(database: Database, knowledge: KnowledgeBase, suggestion_id: int,
                            by: int, refresh: Refresh) -> Decision:
    """Write the wording into its entry's file and serve it; on refusal put the file back and
    leave the suggestion proposed."""
    async with database.session() as session:
        suggestion, decided = await decide_suggestion(session, suggestion_id,
                                                       SuggestionStatus.ACCEPTED, by)
    if suggestion is None:
        return Decision("missing")
    if not decided:
        return Decision("decided", suggestion.wording, suggestion.entry_id)
    entry = _entry(knowledge, suggestion.entry_id)
    errors: tuple[str, ...] = ()
    edit = None
    if entry is None:
        errors = (f"FAQ entry '{suggestion.entry_id}' is no longer in the knowledge base",)
    else:
        edit = await asyncio.to_thread(add_alternate, entry.path, entry.id, suggestion.wording)
        errors = await refresh() if edit is not None else ()
    if errors:
        if edit is not None:
            await asyncio.to_thread(edit.undo)
        async with database.session() as session:
            await reopen_suggestion(session, suggestion_id)
        return Decision("invalid", suggestion.wording, suggestion.entry_id, errors=errors)
    return Decision("accepted", suggestion.wording, suggestion.entry_id,
                    entry.path if entry else None)


async def reject_suggestion(database: Database, suggestion_id: int, by: int) -> Decision:
    async with database.session() as session:
        suggestion, decided = await decide_suggestion(session, suggestion_id,
                                                       SuggestionStatus.REJECTED, by)
    if suggestion is None:
        return Decision("missing")
    return Decision("rejected" if decided else "decided", suggestion.wording,
                    suggestion.entry_id)


# --- FAQ drafts from the secretariat's answers ------------------------------------------------

REVIEW = "review"
DRAFT_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,49}$")  # fits a button's 64 bytes


def write_draft(case: FollowUpCase, knowledge_dir: Path, index: KnowledgeIndex) -> Path:
    """Write knowledge/review/followup-N.yaml: a valid FAQ file (the question, the
    secretariat's answer, its source SEC and the day) that an admin approves with /review."""
    near = near_misses(case, index)
    category = near[0].category if near else "contact"
    answered = case.followup.answered_at or utcnow()
    entry = {
        "id": f"followup-{case.followup.id}",
        "question": case.question.text,
        "alternates": [],
        "answer": case.followup.answer,
        "sources": ["SEC"],
        "as_of": answered.date().isoformat(),
    }
    review = knowledge_dir / REVIEW
    review.mkdir(parents=True, exist_ok=True)
    path = review / f"followup-{case.followup.id}.yaml"
    header = (f"# FAQ draft from follow-up #{case.followup.id}: the question as asked and the\n"
              "# secretariat's answer (source SEC, 사무국 답변). Review the wording, category and\n"
              "# alternates; /review approves it into knowledge/faq/ (or discards it).\n")
    body = yaml.safe_dump({"category": category, "entries": [entry]}, allow_unicode=True,
                          sort_keys=False)
    path.write_text(header + body, encoding="utf-8")
    return path


@dataclass(frozen=True)
class Draft:
    """A draft waiting in knowledge/review/: its name (the file's stem) and first entry."""

    name: str
    path: Path
    question: str
    answer: str
    category: str


def list_drafts(knowledge_dir: Path) -> list[Draft]:
    """The drafts waiting for review, oldest file first; unreadable ones are listed too, with
    the reason as their question, so that an admin can discard them."""
    drafts = []
    folder = knowledge_dir / REVIEW
    paths = sorted(folder.glob("*.yaml"), key=lambda p: (p.stat().st_mtime, p.name))
    for path in paths:
        if not DRAFT_NAME.match(path.stem):
            continue
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            [entry, *_] = data.get("entries") or [{}]
            drafts.append(Draft(path.stem, path, str(entry.get("question", "")),
                                str(entry.get("answer", "")), str(data.get("category", ""))))
        except (yaml.YAMLError, ValueError, AttributeError, OSError) as exc:
            drafts.append(Draft(path.stem, path, f"({exc.__class__.__name__})", "", ""))
    return drafts


def _draft_path(knowledge_dir: Path, name: str) -> Path | None:
    path = knowledge_dir / REVIEW / f"{name}.yaml"
    return path if DRAFT_NAME.match(name) and path.is_file() else None


async def approve_draft(knowledge_dir: Path, name: str, refresh: Refresh) -> Decision:
    """Move the draft into knowledge/faq/ and serve it; on refusal move it back."""
    source = _draft_path(knowledge_dir, name)
    if source is None:
        return Decision("missing", entry_id=name)
    target = knowledge_dir / "faq" / source.name
    if target.exists():
        return Decision("invalid", entry_id=name,
                        errors=(f"{target}: a file of that name is in knowledge/faq/ already",))
    await asyncio.to_thread(shutil.move, source, target)
    errors = await refresh()
    if errors:
        await asyncio.to_thread(shutil.move, target, source)
        return Decision("invalid", entry_id=name, path=source, errors=errors)
    return Decision("approved", entry_id=name, path=target)


async def discard_draft(knowledge_dir: Path, name: str) -> Decision:
    """Set the draft aside in knowledge/review/discarded/ (kept, never listed or loaded)."""
    source = _draft_path(knowledge_dir, name)
    if source is None:
        return Decision("missing", entry_id=name)
    target = knowledge_dir / REVIEW / "discarded" / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(shutil.move, source, target)
    return Decision("discarded", entry_id=name, path=target)

"""Refresh the knowledge a running bot serves, without a restart and never with a broken base.

A reload validates and indexes the knowledge folder in a worker thread, then swaps the served
index in one assignment; questions in flight keep the snapshot they started with. A broken
file aborts the reload with its place, and the last good index stays in service.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import logging
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError

from bot.answering import models_of
from bot.knowledge import load_knowledge
from bot.storage.database import Database
from bot.storage.records import activate_knowledge, active_knowledge
from index import (
    FaqEntry,
    KnowledgeBase,
    KnowledgeError,
    KnowledgeIndex,
    KnowledgeInvalid,
)
from index.analyzer import Analyzer, make_analyzer
from index.knowledge import Glossary, knowledge_files, knowledge_version
from index.search import phrasing_texts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KnowledgeChanges:
    """What a reload changed, FAQ entry by entry."""

    old_version: str
    new_version: str
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    passages_before: int = 0
    passages_after: int = 0
    seconds: float = 0.0

    @property
    def unchanged(self) -> bool:
        return self.old_version == self.new_version


@dataclass(frozen=True)
class ReloadFailed:
    """A reload that was refused: every error with its file and line, the causes first."""

    errors: tuple[str, ...]
    version_kept: str
    # The last of `errors`: those that follow from another (a rule citing an entry of a
    # broken FAQ file), each naming the error it follows from.
    knock_on: tuple[str, ...] = ()

    @property
    def causes(self) -> tuple[str, ...]:
        """The errors to fix: the others go away with them."""
        return self.errors[:len(self.errors) - len(self.knock_on)]


def fingerprints(knowledge: KnowledgeBase) -> dict[str, str]:
    """Per FAQ entry id, a hash of everything a user could see change."""

    def content(entry: FaqEntry) -> str:
        return json.dumps([entry.question, entry.alternates, entry.answer, entry.answer_en,
                           entry.category, entry.sources, entry.as_of.isoformat()],
                          ensure_ascii=False)

    return {e.id: hashlib.sha256(content(e).encode()).hexdigest()[:16] for e in knowledge.entries}


def compare(before: dict[str, str], after: dict[str, str]) -> tuple[tuple[str, ...], ...]:
    """Entry ids added, removed and changed between two sets of fingerprints."""
    added = tuple(sorted(after.keys() - before.keys()))
    removed = tuple(sorted(before.keys() - after.keys()))
    changed = tuple(sorted(i for i in before.keys() & after.keys() if before[i] != after[i]))
    return added, removed, changed


# Texts per task: each result is unpickled in this process in one go, holding the interpreter,
# so results stay small (a single 10,000-passage result stalled the event loop ~200 ms).
CHUNK = 200
_worker_analyzer: Analyzer | None = None


def _start_worker(glossary: Glossary, analyzer_name: str) -> None:
    global _worker_analyzer
    _worker_analyzer = make_analyzer(analyzer_name, glossary)


def _analyze_chunk(texts: list[str]) -> list[list[str]]:
    assert _worker_analyzer is not None
    return _worker_analyzer.tokens_many(texts)


def analyze_in_child(glossary: Glossary, analyzer_name: str, texts: list[str]
                     ) -> list[list[str]]:
    """Analyze texts in a child process: Kiwi holds the interpreter while it analyzes, and the
    bot's event loop must not wait for it."""
    context = multiprocessing.get_context("spawn")
    chunks = [texts[i:i + CHUNK] for i in range(0, len(texts), CHUNK)]
    with ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=_start_worker,
                             initargs=(glossary, analyzer_name)) as pool:
        return [tokens for chunk in pool.map(_analyze_chunk, chunks) for tokens in chunk]


def rebuild(current: KnowledgeIndex) -> KnowledgeIndex:
    """Load, validate and index the knowledge folder again (blocking; run it in a thread).

    The served analyzer keeps its loaded Kiwi; the analysis itself runs in a child process.
    """
    knowledge = load_knowledge(current.knowledge.root)
    analyzer = current.analyzer
    if knowledge.glossary != current.knowledge.glossary:
        analyzer = analyzer.with_glossary(knowledge.glossary)
    documents = [d.searchable_text() for d in knowledge.documents]
    phrasings = phrasing_texts(knowledge)
    # Building creates millions of small objects; a full cyclic garbage collection over them
    # holds the interpreter for a tenth of a second or more. Collect nothing while building,
    # then move the new index out of the collector's sight: it lives until the next reload.
    gc.disable()
    try:
        tokens = analyze_in_child(knowledge.glossary, analyzer.name, documents + phrasings)
        index = KnowledgeIndex(knowledge, analyzer, corpus=tokens[:len(documents)],
                               phrasings=tokens[len(documents):])
        gc.freeze()
    finally:
        gc.enable()
    try:
        models_of(index)  # the fitted models of the new folder, read and checked now
    except KnowledgeError as exc:
        raise KnowledgeInvalid([exc]) from exc
    return index


class ReloaderServices(Protocol):
    """What the reloader reads and swaps of the bot's services (bot/services.py, which holds
    the reloader)."""

    index: KnowledgeIndex
    database: Database


@dataclass
class KnowledgeReloader:
    """Serializes reloads, swaps the served index, and keeps processes on one version."""

    services: ReloaderServices
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def reload(self, by: int | None = None, activate: bool = True
                     ) -> KnowledgeChanges | ReloadFailed:
        """Rebuild from the knowledge folder and serve it; with `activate`, record the new
        version in the database so that the other bot processes follow."""
        async with self._lock:
            current: KnowledgeIndex = self.services.index
            started = time.perf_counter()
            try:
                fresh = await asyncio.to_thread(rebuild, current)
            except KnowledgeInvalid as exc:
                log.warning("reload refused; still serving %s:\n%s", current.version, exc)
                return ReloadFailed(tuple(str(e) for e in exc.errors), current.version,
                                    tuple(str(e) for e in exc.knock_on))
            new_prints = fingerprints(fresh.knowledge)
            added, removed, changed = compare(fingerprints(current.knowledge), new_prints)
            self.services.index = fresh  # the swap: one reference, atomic for readers
            changes = KnowledgeChanges(
                current.version, fresh.version, added, removed, changed,
                len(current.knowledge.passages), len(fresh.knowledge.passages),
                time.perf_counter() - started)
            log.info("knowledge %s -> %s: +%d -%d ~%d in %.2fs", changes.old_version,
                     changes.new_version, len(added), len(removed), len(changed),
                     changes.seconds)
        if activate:
            await self.activate(fresh, by)
        return changes

    async def activate(self, index: KnowledgeIndex, by: int | None = None) -> None:
        try:
            async with self.services.database.session() as session:
                await activate_knowledge(session, index.version, fingerprints(index.knowledge),
                                         by)
        except SQLAlchemyError:
            log.exception("knowledge %s served but not recorded as active", index.version)

    async def sync(self) -> KnowledgeChanges | ReloadFailed | None:
        """Follow the version another process activated, if this one serves another."""
        try:
            async with self.services.database.session() as session:
                state = await active_knowledge(session)
        except SQLAlchemyError:
            return None  # the database is away; keep serving what we have
        current: KnowledgeIndex = self.services.index
        if state is None:
            await self.activate(current)
            return None
        if state.version == current.version:
            return None
        on_disk = await asyncio.to_thread(folder_version, current.knowledge.root)
        if on_disk == current.version:
            return None  # our files have not changed; the other process has other files
        return await self.reload(activate=False)


def folder_version(root: Path) -> str:
    """The version the knowledge folder would load as, without loading it."""
    return knowledge_version(knowledge_files(root), root)


class LoopLagMonitor:
    """Measures how late the event loop wakes a task that asks to sleep `interval` seconds:
    the longest lateness is the longest stall any handler would have seen."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.longest = 0.0
        self._task: asyncio.Task | None = None

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.interval)
            self.longest = max(self.longest, loop.time() - before - self.interval)

    def __enter__(self) -> LoopLagMonitor:
        self._task = asyncio.get_running_loop().create_task(self._watch())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()

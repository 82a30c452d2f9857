"""The candidate answers of a message, each with the signals the answer model weighs.

A message is searched as written and, when it opens with the asker's situation, also as its
question alone: the situation's words must never hide the answer, and a long message diluted
by them is judged on its question too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bot.answering.features import EntryReading, candidate_features
from bot.answering.parts import situation_end
from index import Hit, KnowledgeIndex, Query

# How many search hits per view the answer model weighs.
CANDIDATES = 8


@dataclass(frozen=True)
class Candidates:
    """Everything searched for one message."""

    query: Query               # the message as written (its hits serve as suggestions)
    hits: list[Hit]            # ... and its hits
    found: list[Hit]           # every candidate, of every view
    features: np.ndarray       # one row per candidate in `found`
    found_by: list[Query]      # per candidate in `found`, the view that found it


def views(text: str) -> list[tuple[str, int]]:
    """(text, where its situation ends) for the message, and for its question alone."""
    end = situation_end(text)
    return [(text, end), (text[end:], 0)] if end else [(text, 0)]


def parse(texts: list[str], index: KnowledgeIndex) -> list[list[Query]]:
    """Per message, the queries of its views (the message first), analyzed in one call."""
    per_text = [views(t) for t in texts]
    flat = iter(index.parse_many([t for vs in per_text for t, _ in vs],
                                 [end for vs in per_text for _, end in vs]))
    return [[next(flat) for _ in vs] for vs in per_text]


def topic_text(query: Query) -> str:
    """What the topic model reads: the message with aliases folded, then its content terms
    marked apart (§신청 §서류), so that the model can weigh what a message is about beside how
    it is written."""
    return f"{query.folded} {' '.join('§' + t for t in query.terms)}"


def gather(parsed: list[list[Query]], on_topic: list[float], answerable: list[float],
           entries: list[EntryReading], index: KnowledgeIndex) -> list[Candidates]:
    """The candidates of several parsed messages, with their signals."""
    out = []
    for queries, topic, kind, asked in zip(parsed, on_topic, answerable, entries, strict=True):
        found, rows, found_by, first = [], [], [], None
        for query in queries:
            hits = index.search(query, limit=CANDIDATES)
            if first is None:
                first = (query, hits)
            found.extend(hits)
            found_by.extend([query] * len(hits))
            rows.extend(candidate_features(query, hits, topic, kind, asked))
        features = np.stack(rows) if rows else np.zeros((0, 0))
        out.append(Candidates(first[0], first[1], found, features, found_by))
    return out

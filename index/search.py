"""The BM25 index over FAQ entries and policy passages, and the query-side facts about a question.

rank-bm25 computes the collection statistics (idf, document lengths); searching uses postings
built from them, so that a query touches only the documents that contain its terms instead of
scanning every document per term as `BM25Okapi.get_scores` does. Both give the same scores.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rank_bm25 import BM25Okapi

from index.analyzer import Analyzer, make_analyzer
from index.knowledge import Document, KnowledgeBase, load_knowledge

MAX_QUERY_CHARS = 2000


@dataclass(frozen=True)
class Hit:
    document: Document
    score: float
    # Share of the question's term weight that this document contains (0..1).
    coverage: float


@dataclass(frozen=True)
class Query:
    """A question as the index sees it."""

    text: str
    terms: tuple[str, ...]
    # Terms the knowledge base never uses: facts we do not have, or words of another subject.
    unknown_terms: tuple[str, ...]
    strong_topic: bool
    weak_topic: bool
    offtopic: bool
    # A greeting, thanks or other small talk (안녕하세요, 고마워요, hello).
    greeting: bool


class KnowledgeIndex:
    """An immutable, searchable snapshot of one knowledge base.

    Reloading builds a new index and swaps the reference, so a search in progress always sees
    one consistent snapshot.
    """

    def __init__(self, knowledge: KnowledgeBase, analyzer: Analyzer,
                 corpus: list[list[str]] | None = None, k1: float = 1.5, b: float = 0.75) -> None:
        """Index `knowledge`; `corpus` is its documents' tokens when they are analyzed already."""
        self.knowledge = knowledge
        self.analyzer = analyzer
        self.documents: tuple[Document, ...] = knowledge.documents
        if corpus is None:
            corpus = _analyze_all(analyzer, [d.searchable_text() for d in self.documents])
        elif len(corpus) != len(self.documents):
            raise ValueError("corpus must hold one token list per document")
        # rank-bm25 divides by zero on an empty document; a placeholder token keeps its length 1.
        corpus = [tokens or ["\0"] for tokens in corpus]
        self.bm25 = BM25Okapi(corpus, k1=k1, b=b)
        self.idf: dict[str, float] = self.bm25.idf
        self._max_idf = max(self.idf.values(), default=1.0)
        self._postings = _build_postings(self.bm25, k1, b)
        glossary = knowledge.glossary
        self._strong = self._phrases(glossary.strong_topic)
        self._weak = self._phrases(glossary.weak_topic)
        self._offtopic = self._phrases(glossary.offtopic)
        self._greeting = _word_pattern(glossary.smalltalk)

    @property
    def version(self) -> str:
        return self.knowledge.version

    def __len__(self) -> int:
        return len(self.documents)

    def _phrases(self, words: tuple[str, ...]) -> tuple[frozenset[str], ...]:
        analyzed = (frozenset(self.analyzer.tokens(w)) for w in words)
        return tuple(p for p in analyzed if p)

    def weight(self, term: str) -> float:
        """How much a term says: its idf, or the highest idf for a term the index lacks."""
        idf = self.idf.get(term)
        return self._max_idf if idf is None else max(idf, 0.05 * self._max_idf)

    def parse(self, text: str) -> Query:
        terms = tuple(dict.fromkeys(self.analyzer.tokens(text[:MAX_QUERY_CHARS])))
        present = set(terms)

        def any_of(phrases: tuple[frozenset[str], ...]) -> bool:
            return any(p <= present for p in phrases)

        return Query(
            text=text,
            terms=terms,
            unknown_terms=tuple(t for t in terms if t not in self.idf),
            strong_topic=any_of(self._strong),
            weak_topic=any_of(self._weak),
            offtopic=any_of(self._offtopic),
            greeting=bool(self._greeting and self._greeting.search(text[:MAX_QUERY_CHARS])),
        )

    def scores(self, terms: tuple[str, ...]) -> np.ndarray:
        scores = np.zeros(len(self.documents), dtype=np.float64)
        for term in terms:
            posting = self._postings.get(term)
            if posting is not None:
                scores[posting[0]] += posting[1]
        return scores

    def search(self, query: Query, limit: int = 5) -> list[Hit]:
        """The best documents for a query, best first, each with its coverage of the query."""
        if not query.terms:
            return []
        scores = self.scores(query.terms)
        candidates = np.flatnonzero(scores > 0)
        if candidates.size == 0:
            return []
        if candidates.size > limit:
            top = candidates[np.argpartition(-scores[candidates], limit - 1)[:limit]]
        else:
            top = candidates
        top = top[np.argsort(-scores[top], kind="stable")]
        total = sum(self.weight(t) for t in query.terms)
        hits = []
        for doc_id in top:
            present = self.bm25.doc_freqs[doc_id]
            covered = sum(self.weight(t) for t in query.terms if t in present)
            hits.append(Hit(self.documents[doc_id], float(scores[doc_id]), covered / total))
        return hits


def _word_pattern(words: tuple[str, ...]) -> re.Pattern[str] | None:
    """Words at a word start (Korean: no syllable before; Latin: a whole word)."""
    if not words:
        return None
    parts = []
    for word in sorted(words, key=len, reverse=True):
        body = re.escape(word)
        if re.fullmatch(r"[A-Za-z ]+", word):
            parts.append(rf"(?<![A-Za-z]){body}(?![A-Za-z])")
        else:
            parts.append(rf"(?<![가-힣]){body}")
    return re.compile("|".join(parts), re.IGNORECASE)


def _analyze_all(analyzer: Analyzer, texts: list[str]) -> list[list[str]]:
    many = getattr(analyzer, "tokens_many", None)
    return many(texts) if many else [analyzer.tokens(t) for t in texts]


Postings = dict[str, tuple[np.ndarray, np.ndarray]]


def _build_postings(bm25: BM25Okapi, k1: float, b: float) -> Postings:
    """Per term: the documents containing it and the BM25 contribution of the term to each."""
    lengths = np.asarray(bm25.doc_len, dtype=np.float64)
    norm = k1 * (1 - b + b * lengths / bm25.avgdl)
    ids: dict[str, list[int]] = defaultdict(list)
    freqs: dict[str, list[int]] = defaultdict(list)
    for doc_id, counts in enumerate(bm25.doc_freqs):
        for term, tf in counts.items():
            ids[term].append(doc_id)
            freqs[term].append(tf)
    postings = {}
    for term, doc_ids in ids.items():
        id_array = np.asarray(doc_ids, dtype=np.int64)
        tf = np.asarray(freqs[term], dtype=np.float64)
        weights = bm25.idf[term] * tf * (k1 + 1) / (tf + norm[id_array])
        postings[term] = (id_array, weights)
    return postings


def build_index(knowledge: KnowledgeBase, analyzer: Analyzer) -> KnowledgeIndex:
    return KnowledgeIndex(knowledge, analyzer)


def load_index(root: Path | str, analyzer: str = "kiwi") -> KnowledgeIndex:
    """Load and validate the knowledge folder and index it; raises KnowledgeInvalid."""
    knowledge = load_knowledge(root)
    return build_index(knowledge, make_analyzer(analyzer, knowledge.glossary))

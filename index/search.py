"""The BM25 index over FAQ entries and policy passages, and the query-side facts about a question.

rank-bm25 computes the collection statistics (idf, document lengths); searching uses postings
built from them, so that a query touches only the documents that contain its terms instead of
scanning every document per term as `BM25Okapi.get_scores` does. Both give the same scores.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rank_bm25 import BM25Okapi

from index.analyzer import Analyzer, Term, make_analyzer
from index.knowledge import Document, FaqEntry, KnowledgeBase, load_knowledge

MAX_QUERY_CHARS = 2000
# How many BM25 candidates are re-ranked by how much of the question they cover.
RERANK_DEPTH = 20
# Coverage differences smaller than this do not reorder candidates; BM25 decides.
COVERAGE_STEP = 0.05
# Verbs and adjectives say how a question is put more than what it asks about.
PREDICATE_SHARE = 0.3
# The asker's situation before 인데/는데 ("...회사인데") weighs this share of the question.
CONTEXT_SHARE = 0.5
CONTEXT_CLAUSE = re.compile(r"[가-힣](?:인데|는데|은데|한데)(?:요)?[\s,.]")
# Endings of Korean compound nouns: amount, money, rate, cost, quantity, number, day.
NOUN_SUFFIXES = frozenset("액금률율비량수일")
# An unknown word that is no topic word weighs this share of the rarest known word.
UNKNOWN_SHARE = 0.5


@dataclass(frozen=True)
class Hit:
    document: Document
    score: float
    # Share of the question's term weight that this document contains (0..1).
    coverage: float
    # The question's terms this document contains.
    matched: tuple[str, ...] = ()


@dataclass(frozen=True)
class Query:
    """A question as the index sees it."""

    text: str
    terms: tuple[str, ...]
    # How much each term says about what is asked (see KnowledgeIndex.weight).
    weights: tuple[float, ...]
    # What kind of word each term is: noun, predicate or number.
    kinds: tuple[str, ...]
    # Nouns the knowledge base never uses: facts we do not have, or another subject's words.
    unknown_terms: tuple[str, ...]
    strong_topic: bool
    weak_topic: bool
    offtopic: bool
    # A greeting, thanks or other small talk (안녕하세요, 고마워요, hello).
    greeting: bool
    # Share of the question's nouns that are unknown and no topic words either (WoW, 호드):
    # high when the question is about something else that shares a word with us.
    foreign_share: float = 0.0
    # Topic words the knowledge base never uses (금리, 한도, 이메일): the question asks for a
    # kind of fact we do not have.
    missing_topic_terms: tuple[str, ...] = ()


class KnowledgeIndex:
    """An immutable, searchable snapshot of one knowledge base.

    Reloading builds a new index and swaps the reference, so a search in progress always sees
    one consistent snapshot.
    """

    def __init__(self, knowledge: KnowledgeBase, analyzer: Analyzer,
                 corpus: list[list[str]] | None = None,
                 phrasings: list[list[str]] | None = None,
                 k1: float = 1.5, b: float = 0.75) -> None:
        """Index `knowledge`. When its text is analyzed already (elsewhere, by the same
        analyzer): `corpus` holds one token list per document, `phrasings` one per text of
        `phrasing_texts(knowledge)`."""
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
        self._phrasings = self._group_phrasings(
            phrasings if phrasings is not None
            else _analyze_all(analyzer, phrasing_texts(knowledge)))
        glossary = knowledge.glossary
        self._strong = self._phrases(glossary.strong_topic)
        self._weak = self._phrases(glossary.weak_topic)
        self._offtopic = self._phrases(glossary.offtopic)
        self._topic_terms = frozenset(
            next(iter(p)) for p in (*self._strong, *self._weak) if len(p) == 1)
        # The ones a compound can contain (마감 in 마감일); looked up for every unknown term.
        self._topic_stems = tuple(t for t in self._topic_terms
                                  if len(t) >= 2 and HANGUL_START.match(t))
        self._greeting = _word_pattern(glossary.smalltalk)
        self._offtopic_words = _word_pattern(glossary.offtopic)

    @property
    def version(self) -> str:
        return self.knowledge.version

    def __len__(self) -> int:
        return len(self.documents)

    def _group_phrasings(self, analyzed: list[list[str]]
                         ) -> dict[int, tuple[frozenset[str], ...]]:
        """Per FAQ entry, the terms of its question and of each alternate phrasing."""
        tokens = iter(analyzed)
        return {i: tuple(frozenset(next(tokens)) for _ in range(1 + len(d.alternates)))
                for i, d in enumerate(self.documents) if isinstance(d, FaqEntry)}

    def _known_form(self, term: str) -> str:
        """An unknown compound noun whose stem the knowledge base uses stands for the stem:
        배정액 (allocated amount) for 배정, 가입비 for 가입."""
        if term in self.idf or len(term) < 3 or term[-1] not in NOUN_SUFFIXES:
            return term
        return term[:-1] if term[:-1] in self.idf else term

    def is_topic_term(self, term: str) -> bool:
        """Is this one of the glossary's topic words (strong or weak), or a compound of one
        (마감일 of 마감)?

        Only one-token topic words count: a part of a longer one (비 of 가입비) is not one.
        """
        if term in self._topic_terms:
            return True
        return self.idf.get(term) is None and any(t in term for t in self._topic_stems)

    def _phrases(self, words: tuple[str, ...]) -> tuple[frozenset[str], ...]:
        # A word the analyzer reads differently alone (주가 → 주/가) stands for itself.
        return tuple(frozenset(self.analyzer.tokens(w) or [w]) for w in words)

    def weight(self, term: str, kind: str = "noun") -> float:
        """How much a term says about what is asked: its idf in the knowledge base.

        A noun or number the knowledge base never uses weighs the most: it names something we
        have no facts about (금리, 이메일, 2027). A verb or adjective it never uses weighs
        little: it is how the question is put (걸치다, 이뤄지다), not what it asks.
        """
        idf = self.idf.get(term)
        if kind == "predicate":
            return PREDICATE_SHARE * (0.3 * self._max_idf if idf is None else idf)
        if idf is None:
            # A topic word we have no facts for (금리, 한도) is what the question is about; any
            # other unknown word may be only how the asker puts it (출범식, 해당).
            return self._max_idf if self.is_topic_term(term) else UNKNOWN_SHARE * self._max_idf
        return max(idf, 0.05 * self._max_idf)

    def parse(self, text: str) -> Query:
        return self.parse_many([text])[0]

    def parse_many(self, texts: list[str]) -> list[Query]:
        """Queries for several questions, analyzed in one call to the analyzer."""
        texts = [text[:MAX_QUERY_CHARS] for text in texts]
        # "저희는 배터리 소재 회사인데, 대출도 되나요?": what comes before 인데/는데 is the
        # asker's situation, what follows is the question; the situation's words weigh less.
        # Each part is analyzed once; the split falls on a space, so the parts' terms are the
        # whole text's.
        splits = [_situation_end(text) for text in texts]
        parts = [part for text, end in zip(texts, splits, strict=True)
                 for part in ((text[:end], text[end:]) if end else (text,))]
        analyzed = iter(self.analyzer.terms_many(parts))
        return [self._query(text, next(analyzed) if end else [], next(analyzed))
                for text, end in zip(texts, splits, strict=True)]

    def _query(self, text: str, situation: list[Term], question: list[Term]) -> Query:
        kinds: dict[str, str] = {}
        for term in (*situation, *question):
            kinds.setdefault(self._known_form(term.form), term.kind)
        context_terms = ({self._known_form(t.form) for t in situation}
                         - {self._known_form(t.form) for t in question})
        terms = tuple(kinds)
        present = set(terms)
        weights = tuple(self.weight(t, kinds[t]) * (CONTEXT_SHARE if t in context_terms else 1)
                        for t in terms)
        unknown = tuple(t for t in terms if t not in self.idf and kinds[t] != "predicate")
        foreign = [t for t in unknown if not self.is_topic_term(t)]
        nouns = [t for t in terms if kinds[t] != "predicate"]

        def any_of(phrases: tuple[frozenset[str], ...]) -> bool:
            return any(p <= present for p in phrases)

        return Query(
            text=text,
            terms=terms,
            weights=weights,
            kinds=tuple(kinds[t] for t in terms),
            unknown_terms=unknown,
            strong_topic=any_of(self._strong),
            weak_topic=any_of(self._weak),
            offtopic=any_of(self._offtopic) or _found(self._offtopic_words, text),
            greeting=_found(self._greeting, text),
            foreign_share=len(foreign) / (len(nouns) or 1),
            missing_topic_terms=tuple(t for t in unknown if self.is_topic_term(t)),
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
        depth = max(limit, RERANK_DEPTH)
        if candidates.size > depth:
            candidates = candidates[np.argpartition(-scores[candidates], depth - 1)[:depth]]
        weight_of = dict(zip(query.terms, query.weights, strict=True))
        asked = weight_of.keys()
        total = sum(query.weights)
        ranked = []
        for doc_id in candidates:
            present = self.bm25.doc_freqs[doc_id]
            # fsum: a set's order changes with the process's hash seed; the sum must not.
            covered = math.fsum(weight_of[t] for t in asked & present.keys()) / total
            # The closest single phrasing of an FAQ question: users ask the way others asked.
            phrased = max((math.fsum(weight_of[t] for t in asked & phrasing) / total
                           for phrasing in self._phrasings.get(doc_id, ())), default=0.0)
            key = (_step(covered), _step(phrased), float(scores[doc_id]))
            ranked.append((key, doc_id, covered))
        ranked.sort(key=lambda r: r[0], reverse=True)
        return [
            Hit(self.documents[doc_id], key[2], covered,
                tuple(t for t in query.terms if t in self.bm25.doc_freqs[doc_id]))
            for key, doc_id, covered in ranked[:limit]
        ]


HANGUL_START = re.compile(r"[가-힣]")


def _situation_end(text: str) -> int:
    """Where the asker's situation (…인데) ends and the question begins; 0 if it has none."""
    split = CONTEXT_CLAUSE.search(text)
    return split.end() if split else 0


def _found(pattern: re.Pattern[str] | None, text: str) -> bool:
    return bool(pattern and pattern.search(text[:MAX_QUERY_CHARS]))


def _step(share: float) -> int:
    return int(share / COVERAGE_STEP + 1e-9)


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


def phrasing_texts(knowledge: KnowledgeBase) -> list[str]:
    """Every FAQ question and alternate, in entry order."""
    return [text for e in knowledge.entries for text in (e.question, *e.alternates)]


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

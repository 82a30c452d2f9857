"""The BM25 index over FAQ entries and policy passages, and the query-side facts about a question.

Two views of a question find candidates: its terms (BM25, with words the knowledge base never
uses corrected to the known word they misspell or, failing that, related to the known word
closest in meaning) and its letters (closeness to each FAQ question and alternate, which holds
without spaces and with typos). Each hit carries the measurements the answering decision
weighs; this module decides nothing.

rank-bm25 computes the collection statistics (idf, document lengths); searching uses postings
built from them, so that a query touches only the documents that contain its terms instead of
scanning every document per term as `BM25Okapi.get_scores` does. Both give the same scores.

One module over 400 lines on purpose: KnowledgeIndex is one immutable snapshot (postings,
letters, stand-ins and the query facts they give), built and searched as a whole.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path

import numpy as np
from rank_bm25 import BM25Okapi

from index.analyzer import Analyzer, make_analyzer
from index.knowledge import Document, FaqEntry, KnowledgeBase, load_knowledge
from index.letters import LetterMatcher, VocabularyCorrector, jamo
from index.terms import HANGUL, Term
from index.token_cache import TokenCache

MAX_QUERY_CHARS = 2000
# How many BM25 candidates are re-ranked by how much of the question they cover.
RERANK_DEPTH = 20
# Coverage differences smaller than this do not reorder candidates; BM25 decides.
COVERAGE_STEP = 0.05
# Verbs and adjectives say how a question is put more than what it asks about.
PREDICATE_SHARE = 0.3
# The asker's situation ("...회사인데", "저는 ... 담당하고 있습니다.") weighs this share.
CONTEXT_SHARE = 0.5
# Endings of Korean compound nouns: amount, money, rate, cost, quantity, number, day.
NOUN_SUFFIXES = frozenset("액금률율비량수일")
# An unknown noun weighs this share of the rarest known word: it may name a fact we lack (금리)
# or be only how the asker puts it (출범식, 해당); the decision weighs how much is unknown.
UNKNOWN_SHARE = 0.5
# How many candidates the letters view adds beside BM25's.
LETTER_CANDIDATES = 5
# A known word related in meaning (CoNg embeddings) stands in for an unknown one from this
# cosine on; measured: 대출~융자 0.72, 출범~발족 0.79, 금리~이자 0.74, but 사무국~그린피스 0.76,
# so the stand-in only counts with its similarity as weight and the decision sees how much of
# the question rests on it.
MIN_RELATED = 0.6
# How many unknown words' closest known nouns an index keeps.
RELATED_CACHE = 4096


@dataclass(frozen=True)
class Hit:
    document: Document
    score: float
    # Share of the question's term weight that this document contains (0..1).
    coverage: float
    # The question's terms this document contains.
    matched: tuple[str, ...] = ()
    # The closest single FAQ phrasing (question or alternate): share of the question's weight
    # it contains, and share of its own terms' weight the question contains.
    phrasing_coverage: float = 0.0
    phrasing_recall: float = 0.0
    # Letter n-gram cosine to the closest phrasing (0 for policy passages).
    letters: float = 0.0
    # Share of the question's weight in what the document itself says (an FAQ entry's
    # question and answer, not the alternates it may be asked by), and the heaviest question
    # term it does not say, as a share: a question about its subject that asks for another
    # fact (the rate of a loan whose size it gives) shares the subject's words only.
    said_coverage: float = 0.0
    unsaid_max: float = 0.0
    # The terms of what the document itself says (as for said_coverage).
    said: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Phrasings:
    """A document's phrasings (see document_phrasings) as the terms they hold."""

    # Per term, the numbers of the phrasings that hold it.
    holding: dict[str, tuple[int, ...]]
    # Per phrasing, the total weight of its terms, which a question's recall divides by.
    own: tuple[float, ...]


@dataclass(frozen=True)
class Query:
    """A question as the index sees it."""

    text: str
    # The text with the glossary's aliases folded (see KnowledgeIndex.fold).
    folded: str
    terms: tuple[str, ...]
    # How much each term says about what is asked (see KnowledgeIndex.weight).
    weights: tuple[float, ...]
    # What kind of word each term is: noun, predicate or number.
    kinds: tuple[str, ...]
    # Nouns the knowledge base never uses and no known word stands in for: facts we do not
    # have, or another subject's words.
    unknown_terms: tuple[str, ...]
    # Words the asker wrote -> the known term that stands in for them, how close (0..1), and
    # how: "typo" (letters) or "related" (meaning).
    stand_ins: tuple[tuple[str, str, float, str], ...] = ()
    # Per term, how much a document that has it is credited: 1 for a word as written, the
    # closeness for a stand-in (a guess counts for less than the word itself).
    credits: tuple[float, ...] = ()
    # Letter closeness to every document (row of KnowledgeIndex.documents).
    letters: np.ndarray | None = None
    # Per term, the word the asker wrote for it (apply for the stem appli, 금리 for the 이자
    # that stands in for it, 배정액 for 배정).
    written: tuple[str, ...] = ()
    # The words of how it is asked (언제, 얼마, 있, 가능, when): not searched for.
    asking: tuple[str, ...] = ()


class KnowledgeIndex:
    """An immutable, searchable snapshot of one knowledge base.

    Reloading builds a new index and swaps the reference, so a search in progress always sees
    one consistent snapshot.
    """

    def __init__(self, knowledge: KnowledgeBase, analyzer: Analyzer,
                 corpus: list[list[str]] | None = None,
                 phrasings: list[list[str]] | None = None,
                 k1: float = 1.5, b: float = 0.75, cache: TokenCache | None = None,
                 related_cache: int = RELATED_CACHE) -> None:
        """Index `knowledge`. When its text is analyzed already (elsewhere, by the same
        analyzer): `corpus` holds one token list per document, `phrasings` one per text of
        `phrasing_texts(knowledge)`. `cache`: the tokens of texts analyzed before.
        `related_cache`: how many unknown words' closest known nouns it keeps."""
        self.knowledge = knowledge
        self.analyzer = analyzer
        self.documents: tuple[Document, ...] = knowledge.documents
        analyze = partial(_analyze_all, analyzer)
        if cache is not None:
            analyze = partial(cache.tokens, analyze=analyze)
        if corpus is None:
            corpus = analyze([d.searchable_text() for d in self.documents])
        elif len(corpus) != len(self.documents):
            raise ValueError("corpus must hold one token list per document")
        # rank-bm25 divides by zero on an empty document; a placeholder token keeps its length 1.
        corpus = [tokens or ["\0"] for tokens in corpus]
        self.bm25 = BM25Okapi(corpus, k1=k1, b=b)
        self.idf: dict[str, float] = self.bm25.idf
        self._max_idf = max(self.idf.values(), default=1.0)
        self._postings = _build_postings(self.bm25, k1, b)
        self._phrasings = self._group_phrasings(
            phrasings if phrasings is not None else analyze(phrasing_texts(knowledge)))
        # What each document itself says: an FAQ entry's question and answer (its alternates
        # are how it may be asked, not what it answers); a passage's whole text.
        faq = [i for i, d in enumerate(self.documents) if isinstance(d, FaqEntry)]
        answers = iter(analyze([_said_text(self.documents[i]) for i in faq]))
        said = {i: frozenset(next(answers)) for i in faq}
        self._said = tuple(said.get(i) or frozenset(doc)
                           for i, doc in enumerate(self.bm25.doc_freqs))
        # Each text as written and with its aliases folded (NGF, 국성펀드 -> 국민성장펀드):
        # folding meets another alias, the text as written is safe from folding's guesses.
        texts, owners = letter_texts(self.documents)
        self._letters = LetterMatcher([*texts, *(self.fold(t) for t in texts)], owners * 2,
                                      len(self.documents))
        vocabulary = sorted(t for t in self.idf if t != "\0")
        self._corrector = VocabularyCorrector(vocabulary)
        # The knowledge base's nouns, the targets of a stand-in by meaning.
        self._nouns = tuple(t for t in vocabulary if len(t) >= 2 and HANGUL.match(t))
        self._noun_set = frozenset(self._nouns)
        # Per process, the words users typed that the knowledge base does not use are many:
        # the closest known noun of the recent ones is kept, not of every one ever asked.
        # (Not a bound method: the cache would hold the index, and a reloaded one would wait
        # for the cycle collector.)
        self._related = lru_cache(maxsize=related_cache)(
            partial(_closest_in_meaning, analyzer, self._nouns,
                    _nearest_to_nouns(analyzer, self._nouns, cache)))

    @property
    def version(self) -> str:
        return self.knowledge.version

    def __len__(self) -> int:
        return len(self.documents)

    def _group_phrasings(self, analyzed: list[list[str]]) -> dict[int, Phrasings]:
        """Per document, which of its phrasings (see document_phrasings) hold each term, and
        their total weights."""
        tokens = iter(analyzed)
        grouped = {}
        for i, document in enumerate(self.documents):
            holding: dict[str, list[int]] = defaultdict(list)
            own = []
            for number in range(len(document_phrasings(document))):
                terms = frozenset(next(tokens))
                own.append(math.fsum(self.weight(w) for w in terms) or 1.0)
                for term in terms:
                    holding[term].append(number)
            grouped[i] = Phrasings({t: tuple(n) for t, n in holding.items()}, tuple(own))
        return grouped

    def _known_form(self, term: str) -> str:
        """An unknown compound noun whose stem the knowledge base uses stands for the stem:
        배정액 (allocated amount) for 배정, 가입비 for 가입."""
        if term in self.idf or len(term) < 3 or term[-1] not in NOUN_SUFFIXES:
            return term
        return term[:-1] if term[:-1] in self.idf else term

    def weight(self, term: str, kind: str = "noun") -> float:
        """How much a term says about what is asked: its idf in the knowledge base.

        A noun or number the knowledge base never uses weighs much: it may name something we
        have no facts about (금리, 이메일, 2027). A verb or adjective it never uses weighs
        little: it is how the question is put (걸치다, 이뤄지다), not what it asks.
        """
        idf = self.idf.get(term)
        if kind == "predicate":
            return PREDICATE_SHARE * (0.3 * self._max_idf if idf is None else idf)
        if idf is None:
            return UNKNOWN_SHARE * self._max_idf
        return max(idf, 0.05 * self._max_idf)

    def fold(self, text: str) -> str:
        """The text with the glossary's aliases written as their terms (국성펀드 -> 국민성장펀드),
        as the analyzer reads it."""
        folder = getattr(self.analyzer, "folder", None)
        return folder.fold(text[:MAX_QUERY_CHARS]) if folder else text[:MAX_QUERY_CHARS]

    def stand_in(self, word: str) -> tuple[str, float, str] | None:
        """The known term an unknown word most likely means: its misspelling (대츨 -> 대출) or,
        failing that, the knowledge base's noun closest in meaning (융자 -> 대출)."""
        corrected = self._corrector.correct(word)
        if corrected is not None:
            return (*corrected, "typo")
        related = self._related(word)
        return (*related, "related") if related is not None else None

    def parse(self, text: str, situation_end: int = 0) -> Query:
        return self.parse_many([text], [situation_end])[0]

    def parse_many(self, texts: list[str], situation_ends: list[int] | None = None
                   ) -> list[Query]:
        """Queries for several questions, analyzed in one call to the analyzer.

        situation_ends: per text, where the asker's situation ends ("저희는 배터리 소재
        회사인데, …"); its words weigh less than the question's. Each part is analyzed once.
        """
        texts = [text[:MAX_QUERY_CHARS] for text in texts]
        splits = [min(end, len(text)) for text, end in
                  zip(texts, situation_ends or [0] * len(texts), strict=True)]
        folded = [self.fold(text) for text in texts]
        respelt = []
        for text, fold, end in zip(texts, folded, splits, strict=True):
            if end:
                respelt += [self.respell(text[:end]), self.respell(text[end:])]
            else:
                respelt.append(self._respell(fold))  # one part, the text, folded already
        analyzed = iter(self.analyzer.terms_many([text for text, _ in respelt]))
        corrections = iter([fixes for _, fixes in respelt])
        letters = self._letters.similarities(texts)
        # Letters drop spaces: a folding that only sets a term apart (" 국민성장펀드 ") reads
        # as the text itself and need not be compared again.
        refolded = [row for row, (text, fold) in enumerate(zip(texts, folded, strict=True))
                    if jamo(fold) != jamo(text)]
        if refolded:
            letters[refolded] = np.maximum(
                letters[refolded], self._letters.similarities([folded[row] for row in refolded]))
        queries = []
        for text, fold, end, row in zip(texts, folded, splits, letters, strict=True):
            situation = next(analyzed) if end else []
            fixes = {**next(corrections), **next(corrections)} if end else next(corrections)
            queries.append(self._query(text, fold, situation, next(analyzed), row, fixes))
        return queries

    def respell(self, text: str) -> tuple[str, dict[str, tuple[str, float]]]:
        """The text with each word that is one letter from a word of the knowledge base
        written as that word, and {known word: (as written, closeness)}.

        A misspelling that makes another word (간담희 read as 담 + 희, 금융기간 as 금융 + 기간)
        never reaches the analyzer as an unknown word: it is caught here, on the word as
        typed, before its particles (the longest head of the word that is no known word,
        corrected to a known word of as many syllables)."""
        return self._respell(self.fold(text))

    def _respell(self, folded: str) -> tuple[str, dict[str, tuple[str, float]]]:
        """`respell` of a text with its aliases folded already."""
        fixes: dict[str, tuple[str, float]] = {}

        def fix(match: re.Match[str]) -> str:
            word = match.group()
            for end in range(len(word), 1, -1):
                head = word[:end]
                if head in self.idf:
                    return word
                if not PARTICLES.fullmatch(word[end:]):
                    continue
                found = self._corrector.correct(head)
                if found is not None and len(found[0]) == end and found[0] in self._noun_set:
                    fixes[found[0]] = (head, found[1])
                    return found[0] + word[end:]
            return word

        return HANGUL_WORD.sub(fix, folded), fixes

    def _query(self, text: str, folded: str, situation: list[Term], question: list[Term],
               letters: np.ndarray, respelt: dict[str, tuple[str, float]] | None = None
               ) -> Query:
        kinds: dict[str, str] = {}
        written: dict[str, str] = {}
        closeness: dict[str, float] = {}
        stand_ins = []
        context_terms = set()
        asking: dict[str, None] = {}
        for in_situation, terms in ((True, situation), (False, question)):
            for term in terms:
                if term.kind == "asking":
                    asking[term.form] = None
                    continue
                form = self._known_form(term.form)
                if respelt and form in respelt:
                    typed, close = respelt[form]
                    written.setdefault(form, typed)
                    stand_ins.append((typed, form, close, "typo"))
                    closeness[form] = min(closeness.get(form, 1.0), close)
                elif form not in self.idf and term.kind == "noun":
                    found = self.stand_in(form)
                    if found is not None:
                        stand_ins.append((form, *found))
                        form = found[0]
                        closeness[form] = max(closeness.get(form, 0.0), found[1])
                    else:
                        closeness[form] = 1.0
                else:
                    closeness[form] = 1.0
                kinds.setdefault(form, term.kind)
                written.setdefault(form, term.written or term.form)
                if in_situation:
                    context_terms.add(form)
                else:
                    context_terms.discard(form)
        terms = tuple(kinds)
        weights = tuple(self.weight(t, kinds[t]) * (CONTEXT_SHARE if t in context_terms else 1)
                        for t in terms)
        return Query(
            text=text,
            folded=folded,
            terms=terms,
            weights=weights,
            kinds=tuple(kinds[t] for t in terms),
            unknown_terms=tuple(t for t in terms
                                if t not in self.idf and kinds[t] != "predicate"),
            stand_ins=tuple(stand_ins),
            credits=tuple(closeness[t] for t in terms),
            letters=letters,
            written=tuple(written[t] for t in terms),
            asking=tuple(asking),
        )

    def _closest_phrasing(self, doc_id: int, weight_of: dict[str, float], total: float,
                          shares: dict[tuple[str, ...], tuple[float, float]]
                          ) -> tuple[float, float]:
        """Of the document's phrasings, the one closest to the question: (share of the
        question's weight it contains, share of its own weight the question contains).

        Only the phrasings that hold an asked term are looked at (a passage has a phrasing
        per sentence): any other shares nothing, (0, 0), less than any that shares a term.
        `shares` keeps, per set of shared terms, their two sums, which phrasings repeat."""
        phrasings = self._phrasings.get(doc_id)
        if phrasings is None:
            return 0.0, 0.0
        shared: dict[int, list[str]] = defaultdict(list)
        for term in weight_of:
            for number in phrasings.holding.get(term, ()):
                shared[number].append(term)
        best = (0.0, 0.0)
        for number, terms in shared.items():
            key = tuple(terms)
            if key not in shares:
                # fsum: exact, so that the order of the terms cannot change a sum.
                shares[key] = (math.fsum(weight_of[t] for t in terms),
                               math.fsum(self.weight(t) for t in terms))
            asked, own = shares[key]
            best = max(best, (asked / total, own / phrasings.own[number]))
        return best

    def scores(self, terms: tuple[str, ...], credits: tuple[float, ...] | None = None
               ) -> np.ndarray:
        scores = np.zeros(len(self.documents), dtype=np.float64)
        for term, credit in zip(terms, credits or (1.0,) * len(terms), strict=True):
            posting = self._postings.get(term)
            if posting is not None:
                scores[posting[0]] += posting[1] * credit
        return scores

    def search(self, query: Query, limit: int = 5) -> list[Hit]:
        """The best documents for a query, best first, each with the measurements of how well
        it matches (coverage, closest phrasing, letters)."""
        credits = query.credits or (1.0,) * len(query.terms)
        scores = (self.scores(query.terms, credits) if query.terms
                  else np.zeros(len(self.documents)))
        candidates = np.flatnonzero(scores > 0)
        depth = max(limit, RERANK_DEPTH)
        if candidates.size > depth:
            candidates = candidates[np.argpartition(-scores[candidates], depth - 1)[:depth]]
        letters = query.letters if query.letters is not None else np.zeros(len(self.documents))
        candidates = np.union1d(candidates, _best(letters, LETTER_CANDIDATES))
        if candidates.size == 0:
            return []
        # fsum, as the shares below: a document holding every term covers exactly 1 (a plain
        # sum left 0.9999999999999999, and a message asking one thing of two parties was split).
        total = math.fsum(query.weights) or 1.0
        # What a document earns for each term it has: its weight times the term's credit.
        weight_of = {t: w * c for t, w, c in zip(query.terms, query.weights, credits, strict=True)}
        asked = weight_of.keys()
        shares: dict[tuple[str, ...], tuple[float, float]] = {}
        ranked = []
        # Plain numbers: a numpy scalar costs more to read than the arithmetic done with it.
        for doc_id, closeness, score in zip(candidates.tolist(), letters[candidates].tolist(),
                                            scores[candidates].tolist(), strict=True):
            present = self.bm25.doc_freqs[doc_id]
            # fsum: a set's order changes with the process's hash seed; the sum must not.
            covered = math.fsum(weight_of[t] for t in asked & present.keys()) / total
            # fsum and max: exact whatever order the set (and the hash seed) gives.
            unsaid = [weight_of[t] for t in asked - self._said[doc_id]]
            answered = 1 - math.fsum(unsaid) / total
            # The closest single phrasing of an FAQ question: users ask the way others asked.
            phrased, recall = self._closest_phrasing(doc_id, weight_of, total, shares)
            # Ties in coverage go to the closer phrasing, in words and then in letters.
            key = (_step(max(covered, closeness)), _step(phrased), _step(closeness), score)
            ranked.append((key, doc_id, score, closeness, covered, phrased, recall, answered,
                           max(unsaid, default=0.0) / total))
        ranked.sort(key=lambda r: r[0], reverse=True)
        return [
            Hit(self.documents[doc_id], score, covered,
                tuple(t for t in query.terms if t in self.bm25.doc_freqs[doc_id]),
                phrasing_coverage=phrased, phrasing_recall=recall,
                letters=closeness, said_coverage=answered, unsaid_max=unsaid_max,
                said=self._said[doc_id])
            for _, doc_id, score, closeness, covered, phrased, recall, answered, unsaid_max
            in ranked[:limit]
        ]


HANGUL_WORD = re.compile(r"[가-힣]{2,}")
# What may follow a noun inside a written word: a plural, particles, the copula's forms (a
# closed class of Korean grammar), so that a head is only corrected where a noun can end.
PARTICLES = re.compile(r"(들)?(은|는|이|가|을|를|에|에서|에게|께|의|도|로|으로|랑|이랑|과|와|하고|"
                       r"만|까지|부터|처럼|보다|이나|나|엔|에는|에도|으론|론|이란|란|)"
                       r"(요|이요|예요|이에요|에요|인가요|인데|인데요|이고|고|야|이야|임|인지)?")


def _best(values: np.ndarray, count: int) -> np.ndarray:
    """The positions of the `count` largest positive values, ties to the earlier position (as
    a stable sort would choose), without sorting them all."""
    if values.size > count:
        kth = np.partition(values, values.size - count)[values.size - count]
        positions = np.flatnonzero(values >= max(kth, np.nextafter(0, 1)))
    else:
        positions = np.flatnonzero(values > 0)
    return positions[np.argsort(-values[positions], kind="stable")][:count]


def _nearest_to_nouns(analyzer: Analyzer, nouns: tuple[str, ...], cache: TokenCache | None
                      ) -> dict[str, frozenset[str]]:
    """Per word of the language model, the knowledge base's nouns it is among the nearest
    words of (a fifth of a second for 500 nouns: kept in the token cache)."""
    nearest = getattr(analyzer, "nearest", None)
    if nearest is None or getattr(analyzer, "similarity", None) is None:
        return {}

    def read(words: list[str]) -> list[list[str]]:
        return [sorted(nearest(word)) for word in words]

    lists = cache.tokens(list(nouns), read, kind="nearest") if cache else read(list(nouns))
    near: dict[str, set[str]] = defaultdict(set)
    for noun, words in zip(nouns, lists, strict=True):
        for word in words:
            near[word].add(noun)
    return {word: frozenset(found) for word, found in near.items()}


def _closest_in_meaning(analyzer: Analyzer, nouns: tuple[str, ...],
                        nearest_to: dict[str, frozenset[str]], word: str
                        ) -> tuple[str, float] | None:
    """The knowledge base's noun closest in meaning, if the asker's word is among that noun's
    nearest words in the whole language model: 융자 is among 대출's, 심의회 is not among
    보고대회's although their cosine is 0.81 (a neighbouring subject). `nearest_to`: per word,
    the nouns it is among the nearest words of."""
    similarity = getattr(analyzer, "similarity", None)
    # A single syllable (년, 곳) has too many senses for its embedding to mean much.
    # A word among no noun's nearest words (most words users bring: 자동차, 협력사) has none,
    # without measuring it against every noun (a millisecond at 500 nouns).
    if similarity is None or len(word) < 2 or not HANGUL.match(word) or word not in nearest_to:
        return None
    ranked = sorted(((similarity(word, noun), noun) for noun in nouns), reverse=True)
    for score, noun in ranked[:3]:
        if score < MIN_RELATED:
            break
        if noun in nearest_to[word]:
            return noun, score
    return None


def _step(share: float) -> int:
    return int(share / COVERAGE_STEP + 1e-9)


SENTENCE = re.compile(r"(?<=[.!?다요])\s+|\n+")


def document_phrasings(document: Document) -> list[str]:
    """How a document may be asked for: an FAQ entry's question and alternates; a policy
    passage's heading and each of its sentences (a question about a passage tends to echo one
    of them)."""
    if isinstance(document, FaqEntry):
        return [document.question, *document.alternates]
    return [document.heading, *(s for s in SENTENCE.split(document.text) if s.strip())]


def letter_texts(documents: tuple[Document, ...]) -> tuple[list[str], list[int]]:
    """Every phrasing of every document, and the document's number for each."""
    texts, owners = [], []
    for number, document in enumerate(documents):
        own = document_phrasings(document)
        texts.extend(own)
        owners.extend([number] * len(own))
    return texts, owners


def phrasing_texts(knowledge: KnowledgeBase) -> list[str]:
    """Every phrasing of every document, in document order."""
    return [text for d in knowledge.documents for text in document_phrasings(d)]


def _said_text(entry: FaqEntry) -> str:
    return "\n".join((entry.question, entry.answer, entry.answer_en or ""))


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


def build_index(knowledge: KnowledgeBase, analyzer: Analyzer, cache_dir: Path | None = None
                ) -> KnowledgeIndex:
    """Index `knowledge`; with `cache_dir`, the tokens of its texts are kept there between
    starts (index/token_cache.py) for an analyzer that has a fingerprint."""
    fingerprint = getattr(analyzer, "fingerprint", None)
    if cache_dir is None or not fingerprint:
        return KnowledgeIndex(knowledge, analyzer)
    cache = TokenCache(cache_dir, fingerprint)
    index = KnowledgeIndex(knowledge, analyzer, cache=cache)
    cache.save()
    return index


def load_index(root: Path | str, analyzer: str = "kiwi", cache_dir: Path | None = None
               ) -> KnowledgeIndex:
    """Load and validate the knowledge folder and index it; raises KnowledgeInvalid."""
    knowledge = load_knowledge(root)
    return build_index(knowledge, make_analyzer(analyzer, knowledge.glossary), cache_dir)

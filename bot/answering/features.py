"""The measurements the decision weighs: one vector per (question, candidate document).

Each feature is a signal that retrieval computed; none decides anything alone. The fitted
model (bot/answering/model.py) weighs them, and `maxbot ask --json` shows the strongest.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from index import Document, Hit, Query

NO_ENTRY = "(none)"  # the entry model's class for a question no document answers
# The entry probability (and answerable reading) of a document the entry model never saw
# (uploaded or added since the fit): missing, and the fitted trees learned which way a missing
# value goes at each split.
UNSEEN = float("nan")

# What kind of fact a question asks for, and what an answer of that kind contains.
ANSWER_KINDS = (
    (re.compile(r"며칠|몇\s*일|날짜|일자|(?i:what\s+date)"),
     re.compile(r"\d{1,2}\s*월\s*\d{1,2}\s*일|\d{4}-\d{2}-\d{2}")),
    (re.compile(r"언제|몇\s*월|시점|시기|일정|(?i:\bwhen\b)"),
     re.compile(r"\d{4}\s*년|\d{1,2}\s*월|\d{1,2}\s*일|연말|연초|상반기|하반기|분기|"
                r"\d{4}|(?i:january|february|march|april|may|june|july|august|september|"
                r"october|november|december)")),
    (re.compile(r"얼마|몇\s*(조|억|원|%|퍼센트|개|명|곳|배)|금액|액수|(?i:how\s+(much|many))"),
     re.compile(r"\d")),
    # A share: a percentage, not any figure.
    (re.compile(r"몇\s*(%|퍼센트|프로)|비율|(?i:percent|what\s+share)"),
     re.compile(r"\d\s*%|퍼센트|(?i:percent)")),
    # "How often": a schedule, not a date.
    (re.compile(r"자주|몇\s*번|주기|빈도|(?i:how\s+often)"),
     re.compile(r"매년|매월|매주|매일|분기마다|정기|수시|\d+\s*(번|회)|(?i:annual|monthly|weekly|"
                r"regular)")),
    # "Per company": a figure per unit, not a total.
    (re.compile(r"(기업|회사|업체|곳|社)\s*당|(?i:per\s+(company|firm|business))"),
     re.compile(r"(기업|회사|업체|곳)\s*당|(?i:per\s+(company|firm))")),
)
# "몇 명", "몇 개", "몇 곳", "몇 조": a count in that unit ("9명", "10개 분과"), not any figure.
COUNTED_IN = re.compile(r"몇\s*([가-힣])")
SHARE_UNITS = {"퍼", "프"}  # 몇 퍼센트 / 몇 프로: a share (ANSWER_KINDS)
# Counters that count the same things, so that "몇 곳" / "몇 군데" is answered by "1,300개
# 기업·기관" as by "1,300곳", and "몇 건" by "100개 프로젝트": things and places, people, money.
# Any other counter (년, 월, 차, 회 …) must be answered in its own unit.
COUNTERS = (("개", "곳", "군데", "건", "가지", "대", "종", "기관", "기업", "분과", "회사", "社"),
            ("명", "인"), ("조", "억", "원", "만"))
ASKS_PLACE = re.compile(r"어디|장소|위치|(?i:\bwhere\b)")
ASKS_PERSON = re.compile(r"누구|누가|담당자|(?i:\bwho\b)")

FEATURES = (
    "coverage",            # share of the question's weight the document contains
    "phrasing_coverage",   # ... that its closest FAQ phrasing contains
    "phrasing_recall",     # share of that phrasing's own weight the question contains
    "letters",             # letter n-gram cosine to the closest phrasing
    "letters_margin",      # ... minus the best other document's
    "coverage_margin",     # coverage minus the best other document's
    "score",               # BM25, log-scaled
    "matched_terms",       # how many of the question's terms the document has, log-scaled
    "question_terms",      # how many terms the question has, log-scaled
    "unknown_share",       # share of the question's weight no known word stands for (fully)
    "stand_in_share",      # share resting on a corrected typo or a word related in meaning
    "missing_max",         # the heaviest question term the document lacks, as a share
    "missing_known",       # share of known terms (used elsewhere in the base) it lacks
    "said_coverage",       # share of the question's weight in the entry's question and answer
    "unsaid_max",          # the heaviest question term they do not say, as a share
    "kind_mismatch",       # asks for a date or figure the document does not hold
    "asks_place",          # asks where
    "asks_person",         # asks who
    "on_topic",            # the topic model's probability that the message is about us
    "answerable",          # ... that the knowledge base answers such a question at all
    "entry_probability",   # the entry model's probability that the question asks for this
                           # document
    "no_entry_probability",  # ... that it asks for something no document answers
    "asked_letters",       # letter closeness to the closest question the sets asked of it
    "asked_none",          # ... of the questions they asked that no document answers
    "pair",                # how the question's words (how it is asked too) go with the words
                           # of the document's answer, as learned from the labelled questions
)
# These are UNSEEN for a document the entry model never saw: they were learned from the
# questions asked of the documents at the fit, and can say nothing of a new one (an uploaded
# passage's schedule question read as unanswerable as a deadline, and was declined; a question
# like one no document answered at the fit may be what the new one answers). The topic model
# too was fitted on what the knowledge base held then: a question about an uploaded programme
# ("AI 바우처 설명회는 언제 열리나요?") reads as another programme's, off topic.
UNSEEN_FEATURES = ("answerable", "entry_probability", "no_entry_probability", "asked_letters",
                   "asked_none", "pair", "on_topic")
# Not signals: the share of glossary terms in the question, which pushed an uploaded
# document's answer below the threshold for naming a glossary term (AI), and whether a
# document is an FAQ entry or a policy passage. Fitted, the latter taught
# that passages are seldom the answer (the FAQ holds most facts), and a newly uploaded
# document, which is only passages, then answered nothing.


@dataclass(frozen=True)
class EntryReading:
    """What the entry model reads in a question, per document id (and NO_ENTRY): the
    probability that the question asks for it, and the letter closeness of the closest
    question the labelled sets asked of it (a new wording of an asked question is close to
    it, though the entry's own phrasings may not be)."""

    probability: Mapping[str, float] = field(default_factory=dict)
    asked: Mapping[str, float] = field(default_factory=dict)
    # The pair model's probability that a document (its said terms) answers a question (its
    # terms and asking words): bot/answering/model.py, PairModel.
    pair: Callable[[Query, Hit], float] | None = None


def _counter(syllable: str) -> str:
    """The pattern of the counters that answer "몇 <syllable>…" (see COUNTERS)."""
    for counters in COUNTERS:
        if any(c.startswith(syllable) for c in counters):
            return "|".join(counters)
    return re.escape(syllable)


def answers_kind(question: str, document: Document) -> bool:
    """Does the document hold the kind of fact the question asks for (a date, a figure)?"""
    return AskedKind(question).answered_by(document)


class AskedKind:
    """The kinds of fact a question asks for, read once and matched against each candidate."""

    def __init__(self, question: str) -> None:
        self._wants = [wants for asks, wants in ANSWER_KINDS if asks.search(question)]
        units = {u for u in COUNTED_IN.findall(question) if u not in SHARE_UNITS and u != "몇"}
        self._counts = [re.compile(rf"\d[\d,.]*\s*(?:[십백천만억]\s*)?(?:여\s*)?(?:{_counter(u)})")
                        for u in units]

    def answered_by(self, document: Document) -> bool:
        if not self._wants and not self._counts:
            return True
        text = f"{document.answer}\n{document.answer_en or ''}"
        return (all(wants.search(text) for wants in self._wants)
                and all(count.search(text) for count in self._counts))


def candidate_features(query: Query, hits: list[Hit], on_topic: float, answerable: float,
                       entries: EntryReading) -> list[np.ndarray]:
    """The feature vector (in FEATURES' order) of each of the search's hits; `entries` holds
    the entry model's reading per document id (and NO_ENTRY)."""
    total = sum(query.weights) or 1.0
    credits = query.credits or (1.0,) * len(query.terms)
    unknown = (sum(w for t, w in zip(query.terms, query.weights, strict=True)
                   if t in query.unknown_terms)
               + sum(w * (1 - c) for w, c in zip(query.weights, credits, strict=True))) / total
    stand_in_terms = {s[1] for s in query.stand_ins}
    stand_in = sum(w for t, w in zip(query.terms, query.weights, strict=True)
                   if t in stand_in_terms) / total
    kind = AskedKind(query.text)
    asks_place = 1.0 if ASKS_PLACE.search(query.text) else 0.0
    asks_person = 1.0 if ASKS_PERSON.search(query.text) else 0.0
    rows = []
    for hit in hits:
        others = [h for h in hits if h.document is not hit.document]
        matched = set(hit.matched)
        missing = [(t, w) for t, w in zip(query.terms, query.weights, strict=True)
                   if t not in matched]
        # A document the models were not taught (uploaded since the fit): UNSEEN_FEATURES.
        taught = hit.document.id in entries.probability
        rows.append(np.array([
            hit.coverage,
            hit.phrasing_coverage,
            hit.phrasing_recall,
            hit.letters,
            hit.letters - max((h.letters for h in others), default=0.0),
            hit.coverage - max((h.coverage for h in others), default=0.0),
            math.log1p(hit.score),
            math.log1p(len(hit.matched)),
            math.log1p(len(query.terms)),
            unknown,
            stand_in,
            max((w for _, w in missing), default=0.0) / total,
            sum(w for t, w in missing if t not in query.unknown_terms) / total,
            hit.said_coverage,
            hit.unsaid_max,
            0.0 if kind.answered_by(hit.document) else 1.0,
            asks_place,
            asks_person,
            on_topic if taught else UNSEEN,
            *((answerable, entries.probability[hit.document.id], entries.probability[NO_ENTRY],
               entries.asked.get(hit.document.id, UNSEEN), entries.asked.get(NO_ENTRY, UNSEEN),
               UNSEEN if entries.pair is None else entries.pair(query, hit))
              if taught else (UNSEEN,) * 6),
        ], dtype=np.float64))
    return rows

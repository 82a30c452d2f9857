"""Decide what to tell the user: an answer from the knowledge base, a follow-up, or a pointer.

`answer` is a pure function of the question and the index: no Telegram, no database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from index import Document, FaqEntry, Hit, KnowledgeIndex, Query
from index.analyzer import detect_language

Status = Literal["answered", "unanswered", "smalltalk"]


@dataclass(frozen=True)
class AnsweringRules:
    """When a match is trustworthy enough to be served as the answer.

    min_coverage: share of the question's term weight (idf; terms the knowledge base never uses
        weigh the most) that the best document must contain. A question with a word we have no
        facts for (금리, 한도, 이메일) falls short, which is what declining means.
    min_margin: how far the best document's score must stand above the runner-up's, relative
        to the best; 0 trusts the ranking as it is.
    suggestion_min_coverage: how much of the question a document must cover to be offered as
        "did you mean".
    max_foreign_share: a question that only shares an everyday domain word with us (펀드,
        투자, 얼라이언스) is ours to follow up only if less than this share of its nouns are
        words the knowledge base and the glossary have never seen.
    """

    min_coverage: float = 0.7
    min_margin: float = 0.0
    suggestion_min_coverage: float = 0.34
    max_foreign_share: float = 0.5
    max_suggestions: int = 3


@dataclass(frozen=True)
class Answer:
    question: str
    status: Status
    language: str
    query: Query
    hit: Hit | None = None
    suggestions: tuple[Document, ...] = ()

    @property
    def followup(self) -> bool:
        """True when the secretariat should follow the question up."""
        return self.status == "unanswered"

    @property
    def document(self) -> Document | None:
        return self.hit.document if self.hit else None


DEFAULT_RULES = AnsweringRules()


def answer(question: str, index: KnowledgeIndex, rules: AnsweringRules = DEFAULT_RULES) -> Answer:
    """Answer from the knowledge base when the best match is trustworthy, else decline or point."""
    return _decide(question, index.parse(question), index, rules)


def answer_many(questions: list[str], index: KnowledgeIndex,
                rules: AnsweringRules = DEFAULT_RULES) -> list[Answer]:
    """`answer` for several questions, analyzed together (the same answers, less CPU)."""
    queries = index.parse_many(questions)
    return [_decide(q, query, index, rules) for q, query in zip(questions, queries, strict=True)]


def _decide(question: str, query: Query, index: KnowledgeIndex, rules: AnsweringRules) -> Answer:
    language = detect_language(question)
    hits = index.search(query, limit=rules.max_suggestions + 3)

    best = hits[0] if hits else None
    if best is not None and _trustworthy(best, hits[1:], query, index, rules):
        related = _suggestions(hits[1:], rules, exclude=best.document)
        return Answer(question, "answered", language, query, best, related)

    if _on_topic(query, rules):
        return Answer(question, "unanswered", language, query, None, _suggestions(hits, rules))
    return Answer(question, "smalltalk", language, query)


def answer_entry(entry: FaqEntry, index: KnowledgeIndex, rules: AnsweringRules = DEFAULT_RULES
                 ) -> Answer:
    """The answer for an FAQ entry the user picked from a button, with related questions."""
    query = index.parse(entry.question)
    hits = index.search(query, limit=rules.max_suggestions + 3)
    related = _suggestions(hits, rules, exclude=entry)
    return Answer(entry.question, "answered", "ko", query, Hit(entry, 0.0, 1.0), related)


def _trustworthy(best: Hit, others: list[Hit], query: Query, index: KnowledgeIndex,
                 rules: AnsweringRules) -> bool:
    if best.coverage < rules.min_coverage or query.missing_topic_terms:
        return False
    # "When ...?" needs an answer with a date, "how much ...?" one with a figure.
    if not answers_kind(query.text, best.document):
        return False
    # One everyday word in common (이름, 비) is no evidence; a topic word or two words are.
    if len(best.matched) < 2 and not any(index.is_topic_term(t) for t in best.matched):
        return False
    # A neighbouring subject's word (수익률, 연금, 주가) vetoes a match found through a shared
    # everyday word, unless the question names the fund or the alliance itself.
    if query.offtopic and not query.strong_topic:
        return False
    runner_up = next((h for h in others if h.document is not best.document), None)
    if runner_up is None or rules.min_margin == 0:
        return True
    return (best.score - runner_up.score) / best.score >= rules.min_margin


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
    # "How often": a schedule, not a date.
    (re.compile(r"자주|몇\s*번|주기|빈도|(?i:how\s+often)"),
     re.compile(r"매년|매월|매주|매일|분기마다|정기|수시|\d+\s*(번|회)|(?i:annual|monthly|weekly|"
                r"regular)")),
    # "Per company": a figure per unit, not a total.
    (re.compile(r"(기업|회사|업체|곳|社)\s*당|(?i:per\s+(company|firm|business))"),
     re.compile(r"(기업|회사|업체|곳)\s*당|(?i:per\s+(company|firm))")),
)


def answers_kind(question: str, document: Document) -> bool:
    """Does the document hold the kind of fact the question asks for (a date, a figure)?"""
    text = f"{document.answer}\n{document.answer_en or ''}"
    return all(wants.search(text) for asks, wants in ANSWER_KINDS if asks.search(question))


def _on_topic(query: Query, rules: AnsweringRules) -> bool:
    """Is this a question about the fund or the alliance, even though we cannot answer it?"""
    if query.strong_topic:
        return True
    return (query.weak_topic and not query.offtopic
            and query.foreign_share < rules.max_foreign_share)


def _suggestions(hits: list[Hit], rules: AnsweringRules, exclude: Document | None = None
                 ) -> tuple[Document, ...]:
    """FAQ questions close to the asked one, offered as buttons ("did you mean")."""
    picked: list[Document] = []
    for hit in hits:
        if not isinstance(hit.document, FaqEntry) or hit.document is exclude:
            continue
        if hit.coverage < rules.suggestion_min_coverage:
            continue
        if all(hit.document is not p for p in picked):
            picked.append(hit.document)
        if len(picked) == rules.max_suggestions:
            break
    return tuple(picked)

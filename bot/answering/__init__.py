"""Decide what to tell the user: an answer from the knowledge base, a follow-up, a pointer, or a
reply in kind to small talk.

`answer` is a pure function of the question and the index (with the models fitted for its
knowledge folder): no Telegram, no database. How a question is decided:

1. Search finds candidates by terms (BM25) and by letters (closeness to each FAQ phrasing).
   A message that is one of an entry's listed phrasings (spaces and punctuation aside) is
   answered with that entry.
2. Otherwise the answer model turns each candidate's signals into the probability that it is
   the right answer; the best is served when that probability clears the fitted threshold.
3. Otherwise the topic model says whether the message is about the fund and the alliance
   (declined and queued for the secretariat), about something else (a pointer), or small talk.
4. A message with several questions is decided part by part (bot/answering/parts.py).
"""

from __future__ import annotations

import copy
import weakref
from dataclasses import dataclass
from threading import Lock
from typing import Literal

import numpy as np

from bot.answering.candidates import Candidates, gather, parse, topic_text
from bot.answering.model import OFF_TOPIC, ON_TOPIC, DecisionModels, load_models
from bot.answering.parts import asks, question_parts
from index import Document, FaqEntry, Hit, KnowledgeIndex, Query
from index.analyzer import detect_language

# Letter closeness from which a message is one of the knowledge base's listed phrasings.
LISTED = 0.999
LISTED_SIGNAL = (("listed_phrasing", 1.0),)

Status = Literal["answered", "unanswered", "off_topic", "smalltalk"]
STATUSES: tuple[Status, ...] = ("answered", "unanswered", "off_topic", "smalltalk")


@dataclass(frozen=True)
class AnsweringRules:
    """How answers are presented (the decision itself is the fitted model's).

    suggestion_min_coverage: how much of the question a document must cover to be offered as
        "did you mean".
    """

    suggestion_min_coverage: float = 0.34
    max_suggestions: int = 3


@dataclass(frozen=True)
class Answer:
    question: str
    status: Status
    language: str
    query: Query
    hit: Hit | None = None
    suggestions: tuple[Document, ...] = ()
    # The answer model's probability that the served (or best) candidate is right.
    probability: float = 0.0
    # The topic model's probability that the message is about the fund or the alliance.
    on_topic: float = 0.0
    # The signals that pushed the decision most, with their push on the log-odds.
    signals: tuple[tuple[str, float], ...] = ()
    # For small talk: greeting | thanks | goodbye | acknowledgement.
    intent: str | None = None
    # A message with several questions: each part's own answer (this one stands for them all).
    parts: tuple[Answer, ...] = ()

    @property
    def followup(self) -> bool:
        """True when the secretariat should follow the question (or a part of it) up."""
        if self.parts:
            return any(p.status == "unanswered" for p in self.parts)
        return self.status == "unanswered"

    @property
    def document(self) -> Document | None:
        return self.hit.document if self.hit else None


DEFAULT_RULES = AnsweringRules()

_models: weakref.WeakKeyDictionary[KnowledgeIndex, DecisionModels] = (
    weakref.WeakKeyDictionary())
_models_lock = Lock()


def models_of(index: KnowledgeIndex) -> DecisionModels:
    """The fitted models of the index's knowledge folder, read once per index; raises
    KnowledgeError when they are missing or broken (a reload then keeps the old index)."""
    with _models_lock:
        models = _models.get(index)
        if models is None:
            models = _models[index] = load_models(index.knowledge.root)
        return models


def with_models(index: KnowledgeIndex, models: DecisionModels) -> KnowledgeIndex:
    """The same index deciding with other models (`maxbot fit --with-traffic` measures them
    on the blind sets before writing them)."""
    twin = copy.copy(index)
    with _models_lock:
        _models[twin] = models
    return twin


def answer(question: str, index: KnowledgeIndex, rules: AnsweringRules = DEFAULT_RULES) -> Answer:
    """Answer from the knowledge base when the model trusts the best match, else decline,
    point elsewhere or reply in kind."""
    return answer_many([question], index, rules)[0]


def answer_many(questions: list[str], index: KnowledgeIndex,
                rules: AnsweringRules = DEFAULT_RULES) -> list[Answer]:
    """`answer` for several questions, analyzed together (the same answers, less CPU)."""
    coordinations = getattr(index.analyzer, "coordinations", None)
    splits = [question_parts(q, coordinations) for q in questions]
    several = [(n, parts) for n, parts in enumerate(splits) if len(parts) > 1]
    readings = [reading for _, parts in several for part in parts for reading in part]
    # A part is read as part of its message: "대출 금리 알려주세요" after "국민성장펀드 규모랑"
    # asks about the fund's loans, not any bank's.
    wholes = [*range(len(questions)),
              *(n for n, parts in several for part in parts for _ in part)]
    texts = [*questions, *readings]
    parsed = parse(texts, index)
    # A reading with no word to look up ("… 얼마인가요? 궁금해요", "알려주세요", "안녕하세요")
    # asks nothing of its own: it is not decided, and a part left without one drops out.
    asks = [n < len(questions) or bool(queries[0].terms) for n, queries in enumerate(parsed)]
    # Where one part is left, it only counts when the whole message is not answered
    # (_combine): it is decided after the whole, and only then.
    part_of = iter(range(len(questions), len(texts)))
    parts_asked: dict[int, list[list[int]]] = {}
    for n, parts in several:
        numbered = [[next(part_of) for _ in part] for part in parts]
        parts_asked[n] = [[i for i in part if asks[i]] for part in numbered]
    single = {n for n, parts in parts_asked.items() if sum(bool(p) for p in parts) == 1}
    first = [n for n, ok in enumerate(asks)
             if ok and (n < len(questions) or wholes[n] not in single)]
    answers, rows = _decide_all(texts, parsed, wholes, first, {}, index, rules)
    decided = {n: a for n, a in zip(first, answers, strict=True) if a is not None}
    # Not decided in the first round: a part that greets or thanks was read there, and drops
    # out (not in `decided`) without being read again.
    read = set(first)
    later = [n for n, ok in enumerate(asks) if ok and n not in read
             and decided[wholes[n]].status != "answered"]
    if later:
        whole_rows = {n: rows[i] for i, n in enumerate(first) if n < len(questions)}
        answers, _ = _decide_all(texts, parsed, wholes, later, whole_rows, index, rules)
        decided.update((n, a) for n, a in zip(later, answers, strict=True) if a is not None)
    results = [decided[n] for n in range(len(questions))]
    for n, parts in parts_asked.items():
        part_answers = [[decided[i] for i in part if i in decided] for part in parts]
        results[n] = _combine(results[n], [_first_answered(a) for a in part_answers if a])
    return results


def _first_answered(readings: list[Answer]) -> Answer:
    """A part's answer: its first reading that is answered, else its likeliest reading's."""
    return next((r for r in readings if r.status == "answered"), readings[0])


def _decide_all(texts: list[str], parsed: list[list[Query]], wholes: list[int],
                chosen: list[int], whole_rows: dict[int, np.ndarray], index: KnowledgeIndex,
                rules: AnsweringRules) -> tuple[list[Answer | None], np.ndarray]:
    """Decide the `chosen` texts (`parsed`: each text's queries), and give their topic rows;
    None for a part that greets or thanks.
    wholes[i] is the text whose message text i is part of (itself for a whole message), chosen
    too or in `whole_rows` with its topic row: a part about us in a message about us is about
    us."""
    models = models_of(index)
    read = [topic_text(parsed[n][0]) for n in chosen]
    rows, answerable, entries = models.topic.read(read, [texts[n] for n in chosen])
    on_topic = models.topic.classes.index(ON_TOPIC)
    # What is neither about us nor about anything else: a greeting, thanks.
    chat = np.asarray([c not in (ON_TOPIC, OFF_TOPIC) for c in models.topic.classes])
    position = {n: i for i, n in enumerate(chosen)}
    asking = []
    for i, n in enumerate(chosen):
        whole = wholes[n]
        if whole != n and rows[i, chat].sum() > rows[i, on_topic]:
            # A part that greets or thanks ("안녕하세요? 국민성장펀드 규모 알려주세요") asks
            # nothing, whatever the message is about: it drops out, as one with no word to
            # look up does, and is no question for the secretariat.
            continue
        asking.append(i)
        whole_row = rows[position[whole]] if whole in position else whole_rows[whole]
        if whole_row[on_topic] > rows[i, on_topic]:
            rows[i] = whole_row
    topics = [dict(zip(models.topic.classes, rows[i].tolist(), strict=True)) for i in asking]
    found = gather([parsed[chosen[i]] for i in asking], [t[ON_TOPIC] for t in topics],
                   answerable[asking].tolist(), [entries[i] for i in asking], index)
    answers: list[Answer | None] = [None] * len(chosen)
    for i, candidates, topic in zip(asking, found, topics, strict=True):
        answers[i] = _decide(texts[chosen[i]], candidates, topic, models, rules)
    return answers, rows


def _decide(question: str, candidates: Candidates, topic: dict[str, float],
            models: DecisionModels, rules: AnsweringRules) -> Answer:
    language = detect_language(question)
    query, hits = candidates.query, candidates.hits
    on_topic = topic[ON_TOPIC]
    model = models.answer
    best, best_p, signals, threshold = None, 0.0, (), model.threshold
    listed = [h for h in hits if h.letters >= LISTED]
    if len(listed) == 1:
        # The message is one of the entry's own listed phrasings (give or take spaces and
        # punctuation): the knowledge base says what it means, nothing to guess.
        best, best_p, signals = listed[0], 1.0, LISTED_SIGNAL
    elif candidates.found:
        top, best_p, row = model.best(candidates.features)
        best, threshold = candidates.found[top], model.threshold_for(row)
        signals = tuple((name, round(push, 3))
                        for name, push in model.accept.contributions(row)[:5])
    common = {"probability": best_p, "on_topic": on_topic, "signals": signals}
    if best is not None and best_p >= threshold:
        related = _suggestions(hits, rules, exclude=best.document)
        return Answer(question, "answered", language, query, best, related, **common)
    if on_topic >= model.on_topic_threshold:
        return Answer(question, "unanswered", language, query, None,
                      _suggestions(hits, rules), **common)
    others = {c: p for c, p in topic.items() if c != ON_TOPIC}
    kind = max(others, key=others.__getitem__)
    if kind == "off_topic":
        return Answer(question, "off_topic", language, query, **common)
    return Answer(question, "smalltalk", language, query, intent=kind, **common)


def _combine(whole: Answer, parts: list[Answer]) -> Answer:
    """One answer for a message of several questions: each part answered or queued.

    `parts` are those with a word to look up (answer_many); those that are neither answered
    nor queued (the asker's situation) drop out too. When fewer than two questions remain, or
    they all come to the whole message's answer, the whole message's answer stands.
    """
    asked = [p for p in parts if p.status in ("answered", "unanswered")]
    answered_ids = {p.document.id for p in asked if p.document is not None}
    if whole.signals[:1] == LISTED_SIGNAL:
        # The message is a listed phrasing: "KEIT와 사무국은 어떻게 협력하나요?" asks one
        # thing of two parties.
        return whole
    if len(parts) == 1 and asked and asked[0].status == "answered" and whole.status != "answered":
        # One question and what only says it is asked ("사무국은 어디에 있어요? 알려주세요"):
        # the question read alone is answered; a greeting beside it drops out alike. (Not a
        # thing of several joined by a particle: read alone, it loses what the message says.)
        part = asked[0]
        return Answer(whole.question, part.status, whole.language, part.query, part.hit,
                      part.suggestions, part.probability, whole.on_topic, part.signals)
    if len(asked) < 2 or (whole.status == "answered" and len(answered_ids) <= 1
                          and all(p.status == "answered" for p in asked)):
        return whole
    if whole.status == "answered" and whole.hit is not None and whole.hit.coverage >= 1.0:
        # The entry answering the whole message holds every word it asks about: "M.AX
        # 얼라이언스랑 국민성장펀드는 무슨 관계예요?" asks one thing of two parties, and a
        # part ("국민성장펀드는 무슨 관계예요?") can add nothing the whole's answer lacks.
        return whole
    # The same entry answering two parts is said once.
    distinct: list[Answer] = []
    for part in asked:
        if part.document is None or all(part.document is not d.document for d in distinct):
            distinct.append(part)
    lead = next((p for p in distinct if p.status == "answered"), distinct[0])
    return Answer(whole.question, lead.status, whole.language, whole.query, lead.hit,
                  lead.suggestions, lead.probability, whole.on_topic, lead.signals,
                  parts=tuple(distinct))


def answer_entry(entry: FaqEntry, index: KnowledgeIndex, rules: AnsweringRules = DEFAULT_RULES,
                 language: str = "ko") -> Answer:
    """The answer for an FAQ entry the user picked from a button, with related questions, in
    the `language` they read."""
    query = index.parse(entry.question)
    hits = index.search(query, limit=rules.max_suggestions + 3)
    related = _suggestions(hits, rules, exclude=entry)
    return Answer(entry.question, "answered", language, query, Hit(entry, 0.0, 1.0), related,
                  probability=1.0, on_topic=1.0)


def _suggestions(hits: list[Hit], rules: AnsweringRules, exclude: Document | None = None
                 ) -> tuple[Document, ...]:
    """FAQ questions close to the asked one, offered as buttons ("did you mean")."""
    picked: list[Document] = []
    for hit in hits:
        if not isinstance(hit.document, FaqEntry) or hit.document is exclude:
            continue
        if max(hit.coverage, hit.letters) < rules.suggestion_min_coverage:
            continue
        if all(hit.document is not p for p in picked):
            picked.append(hit.document)
        if len(picked) == rules.max_suggestions:
            break
    return tuple(picked)


__all__ = ["DEFAULT_RULES", "STATUSES", "Answer", "AnsweringRules", "Status", "answer",
           "answer_entry", "answer_many", "asks", "models_of", "with_models"]

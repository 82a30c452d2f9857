"""Fit the decision's two models on labelled questions (`maxbot fit`) and write them as JSON.

Labelled questions:
- the knowledge base's own FAQ questions and alternates, as written, without spaces and with
  one syllable misspelt, each labelled with its own entry;
- the project's question sets that are not kept blind (TRAINING_SETS in tests/eval/): `in`
  items label a candidate right when its reply holds the required facts;
- small talk examples (knowledge/model/smalltalk.yaml) and everyday chat (chatbot-train.txt)
  as not about us.

Figures are cross-validated: every probability used to choose a threshold comes from a model
that did not see that question (folds grouped by question).

One module over 400 lines on purpose: `maxbot fit` is one procedure, from the labelled questions
through the folds to both models, their thresholds and the JSON, read from top to bottom.
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import yaml
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, StratifiedKFold

from bot.answering import Answer, with_models
from bot.answering.candidates import Candidates, gather, parse, topic_text
from bot.answering.features import (
    FEATURES,
    NO_ENTRY,
    UNSEEN,
    UNSEEN_FEATURES,
    EntryReading,
    answers_kind,
)
from bot.answering.model import (
    ACCEPT_FEATURES,
    ANSWER_FILE,
    MODEL_DIR,
    OFF_TOPIC,
    ON_TOPIC,
    SMALLTALK_FILE,
    TOPIC_EXAMPLES_FILE,
    TOPIC_FILE,
    UNSEEN_COLUMN,
    AskedQuestions,
    models_from_json,
    pair_words,
)
from bot.answering.parts import question_parts
from bot.evaluation import EvalQuestion, evaluate, holds, load_questions
from bot.replies import said_text
from index import FaqEntry, KnowledgeIndex, Query
from index.analyzer import detect_language
from index.terms import HANGUL

EVAL_DIR = Path(__file__).resolve().parents[2] / "tests" / "eval"
TRAINING_SETS = ("questions.yaml", "holdout.yaml", "holdout3.yaml", "train5.yaml", "train6.yaml",
                 "train7.yaml", "train9.yaml", "train10.yaml", "train11.yaml", "train12.yaml",
                 "train13.yaml", "train14.yaml", "train15.yaml", "train16.yaml",
                 "train17.yaml", "train18.yaml", "train19.yaml", "train20.yaml", "train21.yaml",
                 "train22.yaml", "train23.yaml", "train24.yaml", "train25.yaml", "train26.yaml",
                 "train27.yaml", "train28.yaml", "train29.yaml")
# Sets written to teach the boundary: many questions about a subject the knowledge base
# covers that ask a detail it does not hold (a company's plan, but its amount). The entry
# model and the answer model learn from them; the thresholds (answering, and queueing) are
# chosen without them, as they hold several times the share of such questions (and of
# off-topic ones that share our words) that the other sets do, and the answerable
# reading (is a question of a kind the knowledge base answers at all: a rate, a deadline) is
# taught without their unanswerable ones, which are of the kinds it answers.
BOUNDARY_SETS = ("train10.yaml",)
CHATBOT_TRAIN = "chatbot-train.txt"
# At most this share of the labelled questions may be served a wrong answer (cross-validated;
# `maxbot fit` prints what other thresholds would give). Session 7, with the entry model: 1%
# answers 5 to 11 points more of the blind sets' answerable questions than 1.5% did before it,
# with 18 wrong answers on them for 16; 1.5% would have answered 7 to 15 points more, with 21.
WRONG_TARGET = 0.01
# At most this share of off-topic messages may be queued for the secretariat.
FALSE_QUEUE_TARGET = 0.004
# ... and of off-topic questions that share our words.
NEAR_QUEUE_TARGET = 0.04
# ... and at most this share of the question sets' on-topic questions pointed away (the target
# is that 95% of those it cannot answer are queued).
AWAY_TARGET = 0.03
TOPIC_NGRAMS = (1, 3)
# The answer model: this many trees of this depth. Session 8, with twice the question sets,
# cross-validated: depth 3, 4, 5, 6 answered 65.1, 66.5, 68.0, 68.0% of their answerable
# questions right at the threshold each chose, and 58.0, 61.0, 62.7, 65.1% at 0.90. But on
# the blind sets depth 6 answered 68.4% for 66.2% with twice the wrong answers (18 of 1724
# replies for 9): depth 3 stays. Deeper trees also cost time at every answer.
TREES, DEPTH = 100, 3
# How much more a question from the question sets weighs than an own-phrasing variant.
REALISTIC_WEIGHT = 5
FOLDS = 5
# Every logistic regression here is fitted with Newton's method (conjugate gradients): on
# these sparse n-gram rows it reaches the regularized optimum closer than L-BFGS-B at its
# default tolerance, in about half the time (measured on the entry, topic and pair models).
SOLVER = "newton-cg"
REPEATS = 3
SEED = 20261126


@dataclass
class Labelled:
    """One labelled question: what must be served, if anything."""

    text: str
    # entry id that is right (own phrasings), or regexes the reply must match (question sets)
    entry_id: str | None = None
    must: tuple[str, ...] = ()
    answerable: bool = False
    on_topic: bool = False
    # small talk intent or off_topic for messages not about us
    topic_class: str = ON_TOPIC
    realistic: bool = False  # from a question set (thresholds are chosen on these) ...
    boundary: bool = False  # ... unless from one of the BOUNDARY_SETS
    # Whether its search candidates teach the answer model (not for topic examples, whose
    # answers nobody checked against the knowledge base).
    for_answers: bool = True
    # An example from topic_examples.yaml: off topic though it shares our words, or ours
    # though the knowledge base cannot answer it.
    near: bool = False
    # For an FAQ alternate: the fold whose index leaves it out (see held_out_indexes).
    fold: int | None = None
    # The knowledge base's phrasing this is a variant of (variants are held out together).
    phrasing: str | None = None
    # Asked of the bot and labelled by its users and admins (`maxbot fit --with-traffic`).
    traffic: bool = False


@dataclass
class FitReport:
    lines: list[str] = field(default_factory=list)

    def say(self, line: str) -> None:
        self.lines.append(line)


# Vowels Korean typists confuse (neighbouring keys on the two-set keyboard, sounds that
# merged): ㅏ/ㅓ, ㅐ/ㅔ, ㅑ/ㅕ, ㅗ/ㅜ, ㅛ/ㅠ, ㅡ/ㅜ, ㅢ/ㅣ, ㅚ/ㅙ/ㅞ, by medial number.
CONFUSED_VOWELS = {0: (4,), 4: (0,), 1: (5,), 5: (1,), 2: (6,), 6: (2,), 8: (13,), 13: (8, 18),
                   12: (17,), 17: (12,), 18: (13,), 19: (20,), 20: (19,), 11: (10, 15),
                   10: (11, 15), 15: (10, 11)}


def misspell(text: str, rng: random.Random) -> str:
    """The text with one vowel of its longest Korean word confused (규모 -> 교모, 대출 -> 대츨)."""
    words = re.findall(r"[가-힣]{2,}", text)
    if not words:
        return text
    word = max(words, key=len)
    i = rng.randrange(len(word))
    code = ord(word[i]) - 0xAC00
    initial, rest = divmod(code, 21 * 28)
    medial, final = divmod(rest, 28)
    medial = rng.choice(CONFUSED_VOWELS.get(medial, ((medial + 1) % 21,)))
    typo = word[:i] + chr(0xAC00 + (initial * 21 + medial) * 28 + final) + word[i + 1:]
    return text.replace(word, typo, 1)


# Questions about an entry's subject that ask for a kind of fact its answer lacks: a date, a
# figure, a schedule, a figure per company. They teach the answer model what a kind mismatch
# means, which the question sets alone show too seldom.
KIND_QUESTIONS = ("언제예요?", "얼마예요?", "몇 번 해요?", "기업당 얼마예요?")
# ... and that ask for facts the knowledge base never holds (knowledge/README.md: rates,
# limits, deadlines, forms, contacts): the entry's own words, plus what it cannot answer.
FACET_QUESTIONS = ("신청 마감일은 언제예요?", "담당자 연락처 알려주세요", "금리는 몇 %예요?",
                   "필요 서류는 뭐예요?", "수수료는 얼마예요?", "명단도 알려주세요")


# What a made-up unanswerable question asks: a kind of fact its entry lacks ("… 얼마예요?"),
# or a facet the knowledge base never holds ("… 금리는 몇 %예요?").
KIND, FACET = "kind", "facet"


def labelled_questions(index: KnowledgeIndex, eval_dir: Path = EVAL_DIR) -> list[Labelled]:
    rng = random.Random(SEED)
    out: list[Labelled] = []
    for entry in index.knowledge.entries:
        for number, text in enumerate((entry.question, *entry.alternates)):
            phrasing = f"{entry.id}#{number}"
            for variant in _variants(text, rng):
                # As listed (users type a button's label or a listed wording, without spaces
                # or with a typo) ...
                out.append(Labelled(variant, entry_id=entry.id, answerable=True, on_topic=True,
                                    phrasing=phrasing))
                # ... and, for an alternate, asked of an index that does not hold it
                # (held_out_indexes), as a new wording would be.
                if number:
                    out.append(Labelled(variant, entry_id=entry.id, answerable=True,
                                        on_topic=True, fold=_fold_of(entry, number - 1),
                                        phrasing=phrasing))
        out.extend(_unanswerable_variants(entry, index, rng))
    coordinations = getattr(index.analyzer, "coordinations", None)
    for name in training_sets(eval_dir):
        for item in load_questions(eval_dir / name):
            labelled = _from_eval(item, len(question_parts(item.question, coordinations)))
            labelled.boundary = name in BOUNDARY_SETS
            out.append(labelled)
    folder = index.knowledge.root / MODEL_DIR
    smalltalk = yaml.safe_load((folder / SMALLTALK_FILE).read_text(encoding="utf-8"))
    for intent, examples in smalltalk.items():
        out.extend(Labelled(str(e), topic_class=intent) for e in examples)
    examples = yaml.safe_load((folder / TOPIC_EXAMPLES_FILE).read_text(encoding="utf-8"))
    out.extend(Labelled(str(e), on_topic=True, for_answers=False, near=True)
               for e in examples.get(ON_TOPIC) or ())
    out.extend(Labelled(str(e), topic_class=OFF_TOPIC, near=True)
               for e in examples.get(OFF_TOPIC) or ())
    chat = (eval_dir / CHATBOT_TRAIN).read_text(encoding="utf-8").splitlines()
    out.extend(Labelled(line, topic_class=OFF_TOPIC) for line in chat
               if line.strip() and not line.startswith("#"))
    return out


def training_sets(eval_dir: Path = EVAL_DIR) -> list[str]:
    """The TRAINING_SETS a folder of question sets holds (all of them in tests/eval/)."""
    return [name for name in TRAINING_SETS if (eval_dir / name).exists()]


def traffic_labelled(right: list[tuple[str, str]], missed: list[str]) -> list[Labelled]:
    """Questions users asked, labelled by them: (wording, entry) pairs an admin accepted or a
    user rated 👍 are answered right by that entry; answers rated 👎 as wrong or as another
    question are not, and no entry is known to be right for them. They weigh as the question
    sets do: this is how people really ask."""
    seen: set[str] = set()
    out = []
    for text, entry_id in right:
        if text not in seen:
            seen.add(text)
            out.append(Labelled(text, entry_id=entry_id, answerable=True, on_topic=True,
                                realistic=True, traffic=True))
    out.extend(Labelled(text, on_topic=True, realistic=True, traffic=True)
               for text in dict.fromkeys(missed) if text not in seen)
    return out


def _variants(text: str, rng: random.Random) -> list[str]:
    """A phrasing as written, without spaces (Korean only: English needs its spaces) and with
    one vowel misspelt."""
    variants = {text, misspell(text, rng), misspell(text, rng)}
    if HANGUL.search(text):
        variants.add(re.sub(r"\s+", "", text))
    return sorted(variants)  # a set's order follows the process's hash seed; the fit must not


def _fold_of(entry: FaqEntry, number: int) -> int:
    return (number + sum(map(ord, entry.id))) % FOLDS


def held_out_indexes(index: KnowledgeIndex) -> list[KnowledgeIndex]:
    """Per fold, the index without that fold's alternates."""
    indexes = []
    for fold in range(FOLDS):
        entries = tuple(
            dataclasses.replace(entry, alternates=tuple(
                text for number, text in enumerate(entry.alternates)
                if _fold_of(entry, number) != fold))
            for entry in index.knowledge.entries)
        knowledge = dataclasses.replace(index.knowledge, entries=entries)
        indexes.append(KnowledgeIndex(knowledge, index.analyzer))
    return indexes


def _unanswerable_variants(entry: FaqEntry, index: KnowledgeIndex, rng: random.Random
                           ) -> list[Labelled]:
    """The entry's subject asked with a kind or a facet of fact that its answer lacks."""
    subject = min((entry.question, *entry.alternates), key=len).rstrip("?？ ")
    out = []
    for question in KIND_QUESTIONS:
        if not answers_kind(question, entry):
            out.append(Labelled(f"{subject} {question}", on_topic=True,
                                phrasing=f"{entry.id}#{KIND}"))
    facet = rng.choice(FACET_QUESTIONS)
    # Only a facet with a word the knowledge base never uses is surely unanswerable.
    if any(t not in index.idf for t in index.analyzer.tokens(facet)):
        out.append(Labelled(f"{subject} {facet}", on_topic=True, phrasing=f"{entry.id}#{FACET}"))
    return out


def _from_eval(item: EvalQuestion, parts: int) -> Labelled:
    if item.kind == "mixed" or (item.kind == "in" and parts > 1):
        # Several questions, decided part by part (answering.parts), and the labels do not
        # say which fact is whose: the whole message teaches the topic model only (no single
        # entry is its right answer, and the answer model learns from single questions).
        return Labelled(item.question, on_topic=True, for_answers=False)
    answerable = item.kind == "in"
    on_topic = item.kind != "off"
    return Labelled(item.question, must=item.must if answerable else (), answerable=answerable,
                    on_topic=on_topic, topic_class=ON_TOPIC if on_topic else OFF_TOPIC,
                    realistic=True)


# --- the topic model -------------------------------------------------------------------------


def _letters_vectorizer(ngrams: tuple[int, int], min_df: int) -> TfidfVectorizer:
    """Sublinear tf-idf of a text's letter n-grams (within words), as both models read them."""
    return TfidfVectorizer(analyzer="char_wb", ngram_range=ngrams, sublinear_tf=True,
                           min_df=min_df, dtype=np.float64)


def _topic_vectorizer() -> TfidfVectorizer:
    return _letters_vectorizer(TOPIC_NGRAMS, min_df=2)


def _topic_classifier() -> LogisticRegression:
    return LogisticRegression(C=4.0, solver=SOLVER, max_iter=300)


# How much each group of examples weighs in the topic model, in total: the ten thousand lines
# of everyday chat must not drown the few off-topic questions that share our words (주가,
# 연금, 전세대출), which are the hard ones.
# The knowledge base's own phrasings and the question sets are many; the examples of what is
# ours though the knowledge base cannot answer it (rates, deadlines, documents: topic_examples)
# are few and keep a share of their own, or the neighbouring subjects' examples (전세대출 금리)
# would teach that every question about a loan's rate is someone else's.
GROUP_SHARES = {"on": 1.5, "on_examples": 0.5, "near": 1.0, "chat": 1.0, "smalltalk": 1.0}


def topic_weights(items: list[Labelled]) -> np.ndarray:
    return _shared_weights([_weight_group(item) for item in items], GROUP_SHARES)


def _shared_weights(groups: list[str | None], shares: dict[str, float]) -> np.ndarray:
    """Per item the weight that gives its group its share of the total (0 for no group)."""
    sizes = {g: groups.count(g) for g in set(groups) if g is not None}
    return np.array([0.0 if g is None else shares[g] / sizes[g] * len(groups) for g in groups])


def _weight_group(item: Labelled) -> str:
    if item.topic_class == ON_TOPIC:
        return "on_examples" if item.near else "on"
    if item.topic_class != OFF_TOPIC:
        return "smalltalk"
    return "near" if item.realistic or item.near else "chat"


def fit_topic(texts: list[str], labels: list[str], weights: np.ndarray
              ) -> tuple[TfidfVectorizer, LogisticRegression]:
    vectorizer = _topic_vectorizer()
    classifier = _topic_classifier().fit(vectorizer.fit_transform(texts), labels,
                                         sample_weight=weights)
    return vectorizer, classifier


def out_of_fold_topic(texts: list[str], labels: list[str], weights: np.ndarray
                      ) -> tuple[list[str], np.ndarray]:
    """P(class) for every text from a model fitted without it."""
    classes = sorted(set(labels))
    probabilities = np.zeros((len(texts), len(classes)))
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=SEED)
    for train, test in folds.split(texts, labels):
        vectorizer, classifier = fit_topic([texts[i] for i in train], [labels[i] for i in train],
                                           weights[train])
        rows = classifier.predict_proba(vectorizer.transform([texts[i] for i in test]))
        for column, cls in enumerate(classifier.classes_):
            probabilities[test, classes.index(cls)] = rows[:, column]
    return classes, probabilities


# --- is it the kind of question the knowledge base answers? ----------------------------------

# How much each group weighs in the answerable reading, in total (see topic_weights): the
# question sets say how people ask what the sources do and do not give; the knowledge base's
# own phrasings and their variants are many, and the made-up unanswerable questions few.
ANSWERABLE_SHARES = {"own": 1.0, "sets_in": 1.0, "sets_unknown": 1.0, "made_up": 0.5}


def _answerable_group(item: Labelled) -> str | None:
    """Which group an item teaches the answerable reading in, if any: questions about us with
    a known answer or none (not several questions in one, whose parts differ)."""
    if item.topic_class != ON_TOPIC:
        return None
    if item.entry_id is not None:
        return "own"
    if item.realistic:
        if item.boundary and not item.answerable:
            return None
        return "sets_in" if item.answerable else "sets_unknown"
    if item.near:
        # The examples of what is ours are so whether or not the knowledge base answers them
        # (우리 회사도 대상이 되나요? is answered in general terms).
        return None
    # A made-up question of a kind its entry lacks says nothing about how a question is
    # worded ("… 얼마예요?" is how most answerable questions end too); one of a facet does.
    return "made_up" if item.phrasing and item.phrasing.endswith(f"#{FACET}") else None


def answerable_weights(items: list[Labelled]) -> np.ndarray:
    """Per item its weight in the answerable reading (0: not taught by it)."""
    return _shared_weights([_answerable_group(item) for item in items], ANSWERABLE_SHARES)


def _answerable_classifier() -> LogisticRegression:
    return LogisticRegression(C=4.0, solver=SOLVER, max_iter=300)


def out_of_fold_answerable(items: list[Labelled], texts: list[str], weights: np.ndarray
                           ) -> np.ndarray:
    """P(answerable) for every text from a model that saw neither it nor the other variants of
    its phrasing."""
    groups = [item.phrasing or f"#{n}" for n, item in enumerate(items)]
    labels = np.array([item.answerable for item in items])
    probabilities = np.zeros(len(items))
    for train, test in GroupKFold(FOLDS).split(texts, labels, groups):
        taught = train[weights[train] > 0]
        vectorizer = _topic_vectorizer()
        model = _answerable_classifier().fit(
            vectorizer.fit_transform([texts[i] for i in taught]), labels[taught],
            sample_weight=weights[taught])
        probabilities[test] = model.predict_proba(
            vectorizer.transform([texts[i] for i in test]))[:, 1]
    return probabilities


def fit_answerable(items: list[Labelled], texts: list[str], weights: np.ndarray,
                   vectorizer: TfidfVectorizer) -> LogisticRegression:
    taught = np.flatnonzero(weights > 0)
    labels = np.array([item.answerable for item in items])
    return _answerable_classifier().fit(vectorizer.transform([texts[i] for i in taught]),
                                        labels[taught], sample_weight=weights[taught])


# --- the answer model ------------------------------------------------------------------------


def _is_right(item: Labelled, answer: Answer) -> bool:
    if not item.answerable or answer.document is None:
        return False
    if item.entry_id is not None:
        return answer.document.id == item.entry_id
    said = said_text(answer)
    return all(holds(p, said) for p in item.must)


def candidate_rows(items: list[Labelled], parsed: list[list[Query]], on_topic: np.ndarray,
                   answerable: np.ndarray, index: KnowledgeIndex
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[Pair]]:
    """Features, right/wrong, question number, document id and the words the pair model
    reads of every candidate of every question. The entry and pair models' columns are left
    missing: they are filled out of fold once the rows say which document is right (see
    entry_columns, pair_columns)."""
    folds = held_out_indexes(index)
    by_index: dict[int, list[int]] = {}
    for number, item in enumerate(items):
        by_index.setdefault(-1 if item.fold is None else item.fold, []).append(number)
    found: dict[int, Candidates] = {}
    for fold, numbers in by_index.items():
        searched = index if fold < 0 else folds[fold]
        # A held-out index weighs terms by its own statistics: parse again there.
        queries = ([parsed[n] for n in numbers] if fold < 0
                   else parse([items[n].text for n in numbers], searched))
        for n, candidates in zip(numbers, gather(queries, on_topic[numbers].tolist(),
                                                 answerable[numbers].tolist(),
                                                 [EntryReading()] * len(numbers), searched),
                                 strict=True):
            found[n] = candidates
    features, right, group, documents, pairs = [], [], [], [], []
    for number, item in enumerate(items):
        candidates = found[number]
        verdicts: dict[int, bool] = {}
        # Judged as the user would read it: an English question gets the English answer.
        language = detect_language(item.text)
        for hit, row, query in zip(candidates.found, candidates.features, candidates.found_by,
                                   strict=True):
            pairs.append((pair_words(query), hit.said))
            key = id(hit.document)
            if key not in verdicts:
                served = Answer(item.text, "answered", language, candidates.query, hit)
                verdicts[key] = _is_right(item, served)
            features.append(row)
            right.append(verdicts[key])
            group.append(number)
            documents.append(hit.document.id)
    return (np.asarray(features), np.asarray(right, dtype=bool), np.asarray(group),
            np.asarray(documents, dtype=object), pairs)


# --- the pair model --------------------------------------------------------------------------

# A candidate as the pair model reads it: the question's words, and what the document says.
Pair = tuple[tuple[str, ...], frozenset[str]]
# Strong regularization: a pair is seen with few documents, and the model must carry to
# questions in words the sets did not use (cross-validated, 0.005 answered more of the sets'
# answerable questions at the same share of wrong answers than 0.02 or 0.1).
PAIR_C = 0.005
# Weights smaller than this are not kept: stored sparse, the model holds 180,000 of its 1.7
# million pairs' weights (11 MB of JSON), and the blind sets answered 2 fewer of 1,422 than
# with all above 0.002 (320,000; 0.01 kept 94,000 and answered 6 fewer).
PAIR_WEIGHT_FLOOR = 0.005


@dataclass(frozen=True)
class PairRows:
    """The candidates' (question word, said word) pairs, one row per candidate, a 1 for each
    pair; `words` and `columns` number them. Built once for every fold: a fold's model gives
    the pairs only its held-out rows hold no weight (L2 leaves a column it never sees at 0),
    as if they were left out, and building the rows in Python was a sixth of the fit."""

    matrix: sp.csr_matrix
    words: dict[str, int]
    columns: dict[tuple[int, int], int]


def pair_rows(pairs: list[Pair]) -> PairRows:
    words: dict[str, int] = {}
    columns: dict[tuple[int, int], int] = {}
    indptr, indices = [0], []
    for asked, said in pairs:
        asked_ids = [words.setdefault(w, len(words)) for w in asked]
        said_ids = [words.setdefault(w, len(words)) for w in said]
        row = {columns.setdefault((a, s), len(columns)) for a in asked_ids for s in said_ids}
        indices.extend(sorted(row))
        indptr.append(len(indices))
    matrix = sp.csr_matrix((np.ones(len(indices)), indices, indptr),
                           shape=(len(pairs), max(len(columns), 1)))
    return PairRows(matrix, words, columns)


def fit_pairs(matrix: sp.csr_matrix, right: np.ndarray, weights: np.ndarray
              ) -> LogisticRegression:
    model = LogisticRegression(C=PAIR_C, solver=SOLVER, max_iter=300)
    model.fit(matrix, right, sample_weight=weights)
    # As stored (pairs_json): the out-of-fold columns read what the served model reads.
    model.coef_[np.abs(model.coef_) < PAIR_WEIGHT_FLOOR] = 0.0
    return model


def _pair_weights(items: list[Labelled], group: np.ndarray) -> np.ndarray:
    return np.array([REALISTIC_WEIGHT if items[n].realistic else 1.0 for n in group.tolist()])


def pair_columns(items: list[Labelled], rows: PairRows, right: np.ndarray, group: np.ndarray
                 ) -> np.ndarray:
    """Out of fold, per candidate row: the pair model's probability that it is right. Folds
    group the variants of one phrasing."""
    weights = _pair_weights(items, group)
    groups = np.array([items[n].phrasing or f"#{n}" for n in group.tolist()], dtype=object)
    column = np.zeros(len(right))
    for train, test in GroupKFold(FOLDS).split(right, right, groups):
        model = fit_pairs(rows.matrix[train], right[train], weights[train])
        column[test] = model.predict_proba(rows.matrix[test])[:, 1]
    return column


def pairs_json(items: list[Labelled], rows: PairRows, right: np.ndarray, group: np.ndarray
               ) -> dict[str, object]:
    model = fit_pairs(rows.matrix, right, _pair_weights(items, group))
    coef = model.coef_[0]
    kept = [(a, s, round(float(coef[c]), 6)) for (a, s), c in rows.columns.items() if coef[c]]
    used = sorted({w for a, s, _ in kept for w in (a, s)})
    number = {old: new for new, old in enumerate(used)}
    by_number = {n: w for w, n in rows.words.items()}
    return {"intercept": round(float(model.intercept_[0]), 6),
            "words": [by_number[n] for n in used],
            "weights": {"asked": [number[a] for a, _, _ in kept],
                        "said": [number[s] for _, s, _ in kept],
                        "values": [v for _, _, v in kept]}}


# --- the entry model -------------------------------------------------------------------------

ENTRY_NGRAMS = (1, 3)
# Weights smaller than this are not kept: the model is stored sparse (a tenth of its weights),
# and what they add moves no probability by more than a few hundredths.
ENTRY_WEIGHT_FLOOR = 0.05
# How much more a question from the question sets weighs than an own-phrasing variant.
ENTRY_REALISTIC_WEIGHT = 3.0
# A document uploaded or added since the fit has no entry probability, and the answer model
# must still decide for it: it is taught without the entry model for every so many documents
# (by id, as if added after the fit), and the questions about a passage are taught twice, the
# second time with the passages as if uploaded after the fit (see passages_as_new).
UNSEEN_EVERY = 10


def entry_labels(items: list[Labelled], right: np.ndarray, group: np.ndarray,
                 documents: np.ndarray) -> list[str | None]:
    """Per item, the document it asks for (its own entry, or the first candidate judged
    right), NO_ENTRY for a question about us with no answer or one not about us, or None when
    no candidate is right though it is answerable (nothing to teach)."""
    first_right: dict[int, str] = {}
    for number, ok, document in zip(group.tolist(), right.tolist(), documents, strict=True):
        if ok and number not in first_right:
            first_right[number] = document
    return [item.entry_id or (first_right.get(n) if item.answerable else NO_ENTRY)
            for n, item in enumerate(items)]


def fit_entries(texts: list[str], labels: list[str], realistic: np.ndarray
                ) -> tuple[TfidfVectorizer, LogisticRegression]:
    """The entry model, its small weights dropped as they are when stored.

    A text taught twice with one label (an alternate is labelled as listed and as held out,
    and a typo may be drawn twice) is taught once with the two weights added: the same fit,
    on some 40% fewer rows."""
    weights: dict[tuple[str, str], float] = {}
    for text, label, real in zip(texts, labels, realistic.tolist(), strict=True):
        weights[text, label] = (weights.get((text, label), 0.0)
                                + (ENTRY_REALISTIC_WEIGHT if real else 1.0))
    # Fewer n-grams than the topic model's: this model holds a weight per n-gram and class.
    vectorizer = _letters_vectorizer(ENTRY_NGRAMS, min_df=3)
    model = LogisticRegression(C=4.0, solver=SOLVER, max_iter=300).fit(
        vectorizer.fit_transform([text for text, _ in weights]),
        [label for _, label in weights], sample_weight=np.fromiter(weights.values(), float))
    model.coef_[np.abs(model.coef_) < ENTRY_WEIGHT_FLOOR] = 0.0
    return vectorizer, model


def entry_columns(items: list[Labelled], texts: list[str], right: np.ndarray,
                  group: np.ndarray, documents: np.ndarray, new: frozenset[str] = frozenset()
                  ) -> tuple[np.ndarray, list[str | None]]:
    """Out of fold, per candidate row: the entry model's probability for its document and for
    NO_ENTRY, both UNSEEN (and so the answerable reading, see fit) for a document it was not
    taught (one no question was asked of, every UNSEEN_EVERY-th, and those in `new`). Folds
    group the variants of one phrasing. Returns the columns and the labels (the final entry
    model is taught every document)."""
    labels = entry_labels(items, right, group, documents)
    known = {label for label in labels if label is not None}
    # As if added after the fit: the entry model is not taught these documents (their
    # questions then look like none it knows), and their rows have no entry probability.
    unseen = {d for d in known if d != NO_ENTRY
              and (d in new or sum(map(ord, d)) % UNSEEN_EVERY == 0)}
    taught = np.array([label is not None and label not in unseen for label in labels])
    realistic = np.array([item.realistic for item in items])
    groups = [item.phrasing or f"#{n}" for n, item in enumerate(items)]
    per_item: list[dict[str, float]] = [{} for _ in items]
    for train, test in GroupKFold(FOLDS).split(texts, taught, groups):
        train = train[taught[train]]
        vectorizer, model = fit_entries([texts[i] for i in train],
                                        [str(labels[i]) for i in train], realistic[train])
        for n, row in zip(test, model.predict_proba(
                vectorizer.transform([texts[i] for i in test])), strict=True):
            per_item[n] = dict(zip(model.classes_.tolist(), row.tolist(), strict=True))
    columns = np.array([
        (per_item[n].get(d, 0.0), per_item[n].get(NO_ENTRY, 0.0))
        if d in known and d not in unseen else (UNSEEN, UNSEEN)
        for n, d in zip(group.tolist(), documents, strict=True)])
    return columns, labels


def asked_questions(items: list[Labelled], labels: list[str | None]) -> list[int]:
    """The questions whose closeness the answer model weighs: the question sets' (and the
    traffic's) with the document that answers them, or none."""
    return [n for n, (item, label) in enumerate(zip(items, labels, strict=True))
            if item.realistic and label is not None]


def asked_columns(items: list[Labelled], labels: list[str | None], group: np.ndarray,
                  documents: np.ndarray) -> np.ndarray:
    """Out of fold, per candidate row: the letter closeness of its question to the closest
    question asked of its document (UNSEEN for one none asked), and to the closest asked of
    none. Folds group the variants of one phrasing, and the questions of one wording."""
    asked = asked_questions(items, labels)
    known = {str(labels[n]) for n in asked}
    in_pool = np.zeros(len(items), dtype=bool)
    in_pool[asked] = True
    groups = [item.phrasing or item.text for item in items]
    per_item: list[dict[str, float]] = [{} for _ in items]
    for train, test in GroupKFold(FOLDS).split(groups, groups=groups):
        taught = train[in_pool[train]]
        model = AskedQuestions([items[i].text for i in taught], [str(labels[i]) for i in taught])
        for n, closeness in zip(test, model.closeness([items[i].text for i in test]),
                                strict=True):
            per_item[n] = closeness
    return np.array([(per_item[n].get(d, 0.0) if d in known else UNSEEN,
                      per_item[n].get(NO_ENTRY, 0.0))
                     for n, d in zip(group.tolist(), documents, strict=True)])


def passages_as_new(features: np.ndarray, right: np.ndarray, group: np.ndarray,
                    documents: np.ndarray, passages: frozenset[str], items: list[Labelled],
                    texts: list[str], questions: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A copy of the candidates of every question with a policy passage among them, read as
    if the knowledge base's passages had been uploaded after the fit (question number +
    `questions`): their learned signals UNSEEN, and the entries' probabilities from an entry
    model not taught the passages, to which a question about one looks like none it knows.

    An uploaded document is passages, and the few documents the fit otherwise leaves untaught
    (UNSEEN_EVERY) are FAQ entries: without these copies the answer model met hardly a question
    whose answer was a passage it had not been taught, and answered 5 of the 60 questions about
    three uploaded documents (9 with them)."""
    mine = np.isin(group, group[np.isin(documents, list(passages))])
    entries, _ = entry_columns(items, texts, right, group, documents, passages)
    copies = features[mine].copy()
    copies[:, [FEATURES.index("entry_probability"),
               FEATURES.index("no_entry_probability")]] = entries[mine]
    new = np.isnan(copies[:, FEATURES.index("entry_probability")])
    for feature in UNSEEN_FEATURES:
        copies[new, FEATURES.index(feature)] = UNSEEN
    return copies, right[mine], group[mine] + questions


def entries_json(vectorizer: TfidfVectorizer, model: LogisticRegression,
                 asked: list[tuple[str, str]]) -> dict[str, object]:
    ngram, cls = np.nonzero(model.coef_.T)
    return {
        "asked": {"texts": [text for text, _ in asked], "labels": [label for _, label in asked]},
        "classes": model.classes_.tolist(),
        "ngram_range": list(ENTRY_NGRAMS),
        "ngrams": vectorizer.get_feature_names_out().tolist(),
        "idf": _rounded(vectorizer.idf_),
        "intercept": _rounded(model.intercept_),
        "weights": {"ngram": ngram.tolist(), "class": cls.tolist(),
                    "values": _rounded(model.coef_.T[ngram, cls])},
    }


# More coverage, closeness or topic probability never makes an answer less likely to be right,
# and more of the question unknown or missing, or a wrong kind of fact, never more likely:
# the constraints keep the fitted trees to that where the labelled questions are few.
RISING = {"coverage", "phrasing_coverage", "phrasing_recall", "letters", "letters_margin",
          "coverage_margin", "on_topic", "said_coverage", "answerable", "asked_letters", "pair"}
FALLING = {"unknown_share", "missing_max", "missing_known", "kind_mismatch", "unsaid_max"}


def _trees(monotonic: list[int]) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(max_iter=TREES, max_depth=DEPTH, learning_rate=0.1,
                                          monotonic_cst=monotonic, early_stopping=False,
                                          random_state=SEED)


def _ranker() -> HistGradientBoostingClassifier:
    return _trees([1 if f in RISING else -1 if f in FALLING else 0 for f in FEATURES])


def _acceptor() -> HistGradientBoostingClassifier:
    rising = RISING | {"rank_probability", "rank_margin"}
    return _trees([1 if f in rising else -1 if f in FALLING else 0 for f in ACCEPT_FEATURES])


def _fit_acceptor(rows: np.ndarray, right: np.ndarray, realistic: np.ndarray
                  ) -> HistGradientBoostingClassifier:
    """The question sets' questions are how people really ask: they weigh more than the
    variants of the knowledge base's own phrasings, which are many. Each is taught
    REALISTIC_WEIGHT times rather than weighted: with sample weights, scikit-learn finds each
    feature's bins by one weighted percentile at a time, a quarter of the whole fit's time."""
    taught = np.concatenate([np.arange(len(rows)),
                             np.repeat(np.flatnonzero(realistic), REALISTIC_WEIGHT - 1)])
    return _acceptor().fit(rows[taught], right[taught])


def out_of_fold_ranks(features: np.ndarray, right: np.ndarray, group: np.ndarray
                      ) -> np.ndarray:
    probabilities = np.zeros(len(right))
    for train, test in GroupKFold(FOLDS).split(features, right, group):
        model = _ranker().fit(features[train], right[train])
        probabilities[test] = model.predict_proba(features[test])[:, 1]
    return probabilities


def acceptance_rows(features: np.ndarray, right: np.ndarray, group: np.ndarray,
                    ranked: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Per question with candidates: the best-ranked candidate's row, the ranker's
    probability and margin (as AnswerModel.best builds it), whether it is right, and the
    question's number."""
    rows, oks, asked = [], [], []
    for question in np.unique(group):
        mine = np.flatnonzero(group == question)
        order = mine[np.argsort(-ranked[mine], kind="stable")]
        top = order[0]
        margin = ranked[top] - (ranked[order[1]] if len(order) > 1 else 0.0)
        rows.append(np.concatenate([features[top], [ranked[top], margin]]))
        oks.append(bool(right[top]))
        asked.append(int(question))
    return np.asarray(rows), np.asarray(oks, dtype=bool), asked


def out_of_fold_accept(rows: np.ndarray, right: np.ndarray, realistic: np.ndarray
                       ) -> np.ndarray:
    """Out-of-fold acceptance probabilities, averaged over REPEATS different fold splits: the
    threshold rests on the few hardest questions, and one split's luck would move it."""
    probabilities = np.zeros(len(right))
    for repeat in range(REPEATS):
        folds = StratifiedKFold(FOLDS, shuffle=True, random_state=SEED + repeat)
        for train, test in folds.split(rows, right):
            model = _fit_acceptor(rows[train], right[train], realistic[train])
            probabilities[test] += model.predict_proba(rows[test])[:, 1] / REPEATS
    return probabilities


def complete_trees(model: HistGradientBoostingClassifier, features: tuple[str, ...]
                   ) -> dict[str, object]:
    """The fitted trees as complete binary trees of depth DEPTH (see model.Trees)."""
    trees = [_complete_tree(tree.nodes) for (tree,) in model._predictors]
    return {"features": list(features), "depth": DEPTH, "trees": len(trees),
            "feature": [t[0] for t in trees], "split": [t[1] for t in trees],
            "values": [t[2] for t in trees], "missing_right": [t[3] for t in trees],
            "baseline": round(float(model._baseline_prediction.ravel()[0]), 9)}


# A split no signal's value is above.
ALL_LEFT = 1e300


def _complete_tree(source: np.ndarray
                   ) -> tuple[list[int], list[float], list[float], list[int]]:
    inner, nodes = 2 ** DEPTH - 1, 2 ** (DEPTH + 1) - 1
    feature, split, value = [0] * inner, [0.0] * inner, [0.0] * nodes
    missing_right = [0] * inner

    def mean_value(i: int) -> float:
        """A leaf's value, or the mean of the leaves below weighted by training rows."""
        if source["is_leaf"][i]:
            return float(source["value"][i])
        left, right = source["left"][i], source["right"][i]
        counts = source["count"][left], source["count"][right]
        return (mean_value(left) * counts[0] + mean_value(right) * counts[1]) / sum(counts)

    def fill(i: int, k: int) -> None:
        value[k] = round(mean_value(i), 9)
        if k >= inner:
            return
        if source["is_leaf"][i]:
            feature[k], split[k] = 0, ALL_LEFT  # everything goes left, to a copy of the leaf
            fill(i, 2 * k + 1)
            fill(i, 2 * k + 2)
        else:
            feature[k] = int(source["feature_idx"][i])
            # Unrounded: scikit-learn splits at a value the rows hold, and a rounded split
            # sent the rows between it and its rounding the other way (2.6% of candidates).
            # A split of the missing values from all others is at infinity: written as a
            # finite number above any signal's, as JSON has no infinity (and the loader wants
            # finite numbers), it sends every value left all the same.
            split[k] = min(float(source["num_threshold"][i]), ALL_LEFT)
            missing_right[k] = 0 if source["missing_go_to_left"][i] else 1
            fill(source["left"][i], 2 * k + 1)
            fill(source["right"][i], 2 * k + 2)

    fill(0, 0)
    return feature, split, value, missing_right


@dataclass(frozen=True)
class Outcome:
    """Per question: the best candidate's probability, whether it is right, and whether its
    document is one the fit was not taught (AnswerModel.unseen_threshold)."""

    probability: float
    right: bool
    unseen: bool = False

    def served(self, thresholds: tuple[float, float]) -> bool:
        """Whether it is answered at (threshold, unseen_threshold)."""
        return self.probability >= thresholds[self.unseen]


THRESHOLDS = np.round(np.arange(0.05, 0.995, 0.005), 3)


def choose_thresholds(outcomes: list[Outcome], target: float) -> tuple[float, float]:
    """(threshold, unseen_threshold): the pair that answers the most questions right while at
    most `target` of the questions get a wrong answer.

    Apart, because a document the fit was not taught has fewer signals and lower
    probabilities: one threshold for both answered what it taught at some 1.2% wrong and held
    the others at a few tenths of a percent. Among equals (the same questions answered), the
    higher thresholds: nothing measured speaks for those below."""
    def served(unseen: bool) -> tuple[np.ndarray, np.ndarray]:
        """Per threshold: how many of these questions are answered right, and wrong."""
        mine = [o for o in outcomes if o.unseen == unseen]
        probability = np.array([o.probability for o in mine])
        right = np.array([o.right for o in mine], dtype=bool)
        answered = probability[None, :] >= THRESHOLDS[:, None]
        return (answered & right).sum(axis=1), (answered & ~right).sum(axis=1)

    (right, wrong), (unseen_right, unseen_wrong) = served(False), served(True)
    total_right = right[:, None] + unseen_right[None, :]
    total_wrong = wrong[:, None] + unseen_wrong[None, :]
    allowed = np.argwhere(total_wrong <= target * len(outcomes))
    if not len(allowed):
        return 0.99, 0.99
    a, b = max(allowed.tolist(), key=lambda ab: (total_right[ab[0], ab[1]],
                                                 -total_wrong[ab[0], ab[1]], ab[0], ab[1]))
    return float(THRESHOLDS[a]), float(THRESHOLDS[b])


def fit(index: KnowledgeIndex, eval_dir: Path = EVAL_DIR, target: float = WRONG_TARGET,
        show_errors: bool = False, traffic: list[Labelled] | None = None
        ) -> tuple[dict, dict, FitReport]:
    """Fit both models, with the labelled questions of real traffic when given; returns
    (topic JSON, answer JSON, the cross-validated figures)."""
    report = FitReport()
    items = labelled_questions(index, eval_dir) + list(traffic or ())
    # Parsed once for the topic model (its input holds the content terms) and for the
    # candidates (the own-phrasing variants are searched in their held-out index, parsed
    # alike).
    parsed = parse([item.text for item in items], index)
    texts = [topic_text(queries[0]) for queries in parsed]
    labels = [item.topic_class for item in items]
    weights = topic_weights(items)
    classes, topic_oof = out_of_fold_topic(texts, labels, weights)
    on_topic_oof = topic_oof[:, classes.index(ON_TOPIC)]
    kind_weights = answerable_weights(items)
    answerable_oof = out_of_fold_answerable(items, texts, kind_weights)

    # The answer model sees only messages that may be about us (not the everyday chat, whose
    # topic probability alone keeps it out), so that its rows are the hard cases.
    chosen = [i for i, item in enumerate(items) if item.for_answers and (
        item.topic_class == ON_TOPIC or item.realistic or i % 10 == 0)]
    answered = [items[i] for i in chosen]
    features, right, group, documents, pairs = candidate_rows(
        answered, [parsed[i] for i in chosen], on_topic_oof[chosen], answerable_oof[chosen],
        index)
    candidate_pairs = pair_rows(pairs)
    features[:, FEATURES.index("pair")] = pair_columns(answered, candidate_pairs, right, group)
    pairs_taught = pairs_json(answered, candidate_pairs, right, group)
    entry_oof, entry_of = entry_columns(answered, [texts[i] for i in chosen], right, group,
                                        documents)
    features[:, [FEATURES.index("entry_probability"),
                 FEATURES.index("no_entry_probability")]] = entry_oof
    features[:, FEATURES.index("answerable")] = answerable_oof[chosen][group]
    features[:, FEATURES.index("on_topic")] = on_topic_oof[chosen][group]
    features[:, [FEATURES.index("asked_letters"), FEATURES.index("asked_none")]] = (
        asked_columns(answered, entry_of, group, documents))
    # A document the entry model was not taught stands for one added since the fit: what was
    # learned from the questions asked of the documents at the fit (the answerable reading,
    # the closeness to the asked questions, the topic) is missing for it too.
    unseen = np.isnan(entry_oof[:, 0])
    for feature in UNSEEN_FEATURES:
        features[unseen, FEATURES.index(feature)] = UNSEEN
    uploaded = passages_as_new(features, right, group, documents,
                               frozenset(p.id for p in index.knowledge.passages), answered,
                               [texts[i] for i in chosen], len(chosen))
    features, right, group = (np.concatenate([rows, more]) for rows, more in zip(
        (features, right, group), uploaded, strict=True))
    # A copy is folded with its question (group % len(chosen)), so no fold learns from it.
    rank_oof = out_of_fold_ranks(features, right, group % len(chosen))
    accept_rows, accept_right, asked = acceptance_rows(features, right, group, rank_oof)
    realistic_rows = np.array([items[chosen[q % len(chosen)]].realistic for q in asked],
                              dtype=bool)
    accept_oof = out_of_fold_accept(accept_rows, accept_right, realistic_rows)
    outcomes = [Outcome(0.0, False)] * len(chosen)
    unseen_top = np.isnan(accept_rows[:, UNSEEN_COLUMN])
    for q, p, ok, untaught in zip(asked, accept_oof, accept_right, unseen_top, strict=True):
        if q < len(chosen):  # the copies are taught, not counted
            outcomes[q] = Outcome(float(p), bool(ok), bool(untaught))
    counted = [n for n, i in enumerate(chosen) if items[i].realistic and not items[i].boundary]
    realistic = [outcomes[n] for n in counted]
    thresholds = choose_thresholds(realistic, target)

    on_topic_threshold = _on_topic_threshold(items, on_topic_oof)

    vectorizer, classifier = fit_topic(texts, labels, weights)
    answerable = fit_answerable(items, texts, kind_weights, vectorizer)
    entry_taught = [n for n, label in enumerate(entry_of) if label is not None]
    entry_vectorizer, entry_model = fit_entries(
        [texts[chosen[n]] for n in entry_taught], [str(entry_of[n]) for n in entry_taught],
        np.array([answered[n].realistic for n in entry_taught]))
    ranker = _ranker().fit(features, right)
    accept = _fit_acceptor(accept_rows, accept_right, realistic_rows)

    _report_figures(report, items, chosen, outcomes, on_topic_oof, thresholds,
                    on_topic_threshold)
    _report_curve(report, realistic, [answered[n] for n in counted])
    if show_errors:
        _report_errors(report, [(o, items[i]) for o, i in zip(outcomes, chosen, strict=True)
                                if items[i].realistic], thresholds)
    topic_json = {
        "about": "Topic model (maxbot fit): P(class) = softmax(coef . tfidf(char_wb n-grams of "
                 "the alias-folded text)) + intercept",
        "classes": classifier.classes_.tolist(),
        "ngram_range": list(TOPIC_NGRAMS),
        "ngrams": vectorizer.get_feature_names_out().tolist(),
        "idf": _rounded(vectorizer.idf_),
        "coef": [_rounded(row) for row in classifier.coef_],
        "intercept": _rounded(classifier.intercept_),
        "answerable_coef": _rounded(answerable.coef_[0]),
        "answerable_intercept": round(float(answerable.intercept_[0]), 6),
        "entries": {**entries_json(entry_vectorizer, entry_model, [
            (answered[n].text, str(entry_of[n]))
            for n in asked_questions(answered, entry_of)]),
            "pairs": pairs_taught},
    }
    answer_json = {
        "about": "Answer model (maxbot fit): the ranker's trees score each candidate, the "
                 "acceptance trees the best one (with the ranker's probability and margin): "
                 "P = logistic(baseline + the sum of each tree's leaf); serve from threshold "
                 "(unseen_threshold when the document is one the fit was not taught); "
                 "queue what is not answered from on_topic_threshold",
        "threshold": thresholds[0],
        "unseen_threshold": thresholds[1],
        "on_topic_threshold": on_topic_threshold,
        "figures": report.lines,
        "ranker": complete_trees(ranker, FEATURES),
        "accept": complete_trees(accept, ACCEPT_FEATURES),
    }
    return topic_json, answer_json, report


def _on_topic_threshold(items: list[Labelled], on_topic: np.ndarray) -> float:
    """The P(on_topic) from which a message that is not answered is queued.

    A question of ours pointed away never reaches anyone; a neighbouring question queued costs
    the secretariat a glance. So the threshold is the lowest at which at most
    NEAR_QUEUE_TARGET of the question sets' off-topic questions are queued, lowered further
    when that would point away more than AWAY_TARGET of their on-topic questions (should they
    not be answered), but never so low that more than FALSE_QUEUE_TARGET of everyday chat
    is queued."""
    realistic = np.array([it.realistic for it in items])
    about_us = np.array([it.on_topic for it in items])
    examples = np.array([it.near for it in items])
    boundary = np.array([it.boundary for it in items])
    # The boundary sets' off-topic questions are traps written to share our words (모태펀드,
    # 스타얼라이언스): as for the answer threshold, they do not set the share to stay under.
    near = realistic & ~about_us & ~boundary
    chat = ~realistic & ~about_us
    # The question sets' questions about us, and the examples of what is ours though the
    # knowledge base cannot answer it (rates, deadlines, documents): never off topic.
    ours = (realistic | examples) & about_us
    thresholds = np.round(np.arange(0.05, 0.995, 0.005), 3)

    def share(group: np.ndarray, queued: np.ndarray) -> float:
        return float(queued[group].mean()) if group.any() else 0.0

    floor = next((t for t in thresholds if share(chat, on_topic >= t) <= FALSE_QUEUE_TARGET),
                 0.995)
    chosen = next((t for t in thresholds if t >= floor
                   and share(near, on_topic >= t) <= NEAR_QUEUE_TARGET), 0.995)
    while chosen > floor and 1 - share(ours, on_topic >= chosen) > AWAY_TARGET:
        chosen = round(chosen - 0.005, 3)
    return float(chosen)


def _report_curve(report: FitReport, outcomes: list[Outcome], items: list[Labelled]) -> None:
    """What other thresholds would give on the question sets (cross-validated)."""
    answerable = sum(it.answerable for it in items) or 1
    report.say("  threshold: question sets' answerable answered right / all answered wrong")
    for threshold in (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95):
        served = [(o, it) for o, it in zip(outcomes, items, strict=True)
                  if o.probability >= threshold]
        right = sum(o.right for o, _ in served)
        report.say(f"    {threshold:.2f}: {right / answerable:6.1%} / "
                   f"{(len(served) - right) / len(items):5.1%}")


def _report_errors(report: FitReport, outcomes: list[tuple[Outcome, Labelled]],
                   thresholds: tuple[float, float]) -> None:
    """The question sets' questions the cross-validated decision gets wrong, most confident
    first: what to look at before changing a signal or the knowledge."""
    wrong = [(o, it) for o, it in outcomes if o.served(thresholds) and not o.right]
    missed = [(o, it) for o, it in outcomes if it.answerable and not o.served(thresholds)]
    report.say(f"  served a wrong answer ({len(wrong)}):")
    for o, it in sorted(wrong, key=lambda p: -p[0].probability):
        report.say(f"    p {o.probability:.3f}  {it.text}")
    report.say(f"  answerable, not served ({len(missed)}; * the best candidate was right):")
    for o, it in sorted(missed, key=lambda p: -p[0].probability):
        report.say(f"    p {o.probability:.3f} {'*' if o.right else ' '} {it.text}")


def _report_figures(report: FitReport, items: list[Labelled], chosen: list[int],
                    outcomes: list[Outcome], on_topic: np.ndarray,
                    thresholds: tuple[float, float], on_topic_threshold: float) -> None:
    groups = {
        "own phrasings": lambda it: it.entry_id is not None and not it.traffic,
        "question sets: in": lambda it: it.realistic and it.answerable and not it.traffic,
        "question sets: unknown": lambda it: (it.realistic and it.on_topic and not it.answerable
                                              and not it.traffic),
        "question sets: off": lambda it: it.realistic and not it.on_topic,
        "traffic: right entry": lambda it: it.traffic and it.answerable,
        "traffic: 👎 wrong": lambda it: it.traffic and not it.answerable,
    }
    report.say(f"cross-validated ({FOLDS} folds), answer threshold {thresholds[0]:.3f} "
               f"({thresholds[1]:.3f} for a document the fit was not taught), "
               f"queue from P(on_topic) {on_topic_threshold:.3f}")
    for name, member in groups.items():
        mine = [(o, items[i], i) for o, i in zip(outcomes, chosen, strict=True)
                if member(items[i])]
        if not mine:
            continue
        served = [o for o, _, _ in mine if o.served(thresholds)]
        right = sum(o.right for o in served)
        queued = sum(not o.served(thresholds) and on_topic[i] >= on_topic_threshold
                     for o, _, i in mine)
        report.say(f"  {name:24} {len(mine):5}: answered right {right / len(mine):6.1%}, "
                   f"wrong {(len(served) - right) / len(mine):5.1%}, queued "
                   f"{queued / len(mine):6.1%}")
    chat = [i for i, it in enumerate(items) if not it.on_topic and not it.realistic]
    if chat:
        queued = np.mean(on_topic[chat] >= on_topic_threshold)
        report.say(f"  {'everyday chat':24} {len(chat):5}: queued {queued:6.1%}")


@dataclass(frozen=True)
class BlindTotals:
    """A blind set's totals (its questions stay unread: no failures are listed)."""

    right: int
    wrong: int
    questions: int

    def worse_than(self, other: BlindTotals) -> bool:
        return self.right < other.right or self.wrong > other.wrong


def blind_sets(eval_dir: Path = EVAL_DIR) -> list[Path]:
    """The question sets kept blind: every holdout*.yaml that is not fitted on."""
    return [p for p in sorted(eval_dir.glob("holdout*.yaml")) if p.name not in TRAINING_SETS]


def blind_totals(index: KnowledgeIndex, eval_dir: Path = EVAL_DIR) -> dict[str, BlindTotals]:
    totals = {}
    for path in blind_sets(eval_dir):
        result = evaluate(load_questions(path), index)
        totals[path.name] = BlindTotals(sum(v.correct for v in result.verdicts),
                                        len(result.confidently_wrong), len(result.verdicts))
    return totals


@dataclass(frozen=True)
class TrafficFit:
    """Models fitted with traffic, their figures, and the blind sets' totals with the models
    served now (before) and with these (after)."""

    topic: dict
    answer: dict
    report: FitReport
    before: dict[str, BlindTotals]
    after: dict[str, BlindTotals]

    @property
    def worse(self) -> list[str]:
        """The blind sets that lose a right answer or gain a wrong one: any, and the models
        are not to be written."""
        return [name for name, old in self.before.items() if self.after[name].worse_than(old)]


def fit_with_traffic(index: KnowledgeIndex, traffic: list[Labelled], show_errors: bool = False,
                     eval_dir: Path = EVAL_DIR) -> TrafficFit:
    topic, answer_json, report = fit(index, eval_dir, show_errors=show_errors, traffic=traffic)
    fitted = with_models(index, models_from_json(topic, answer_json,
                                                 index.knowledge.root / MODEL_DIR))
    return TrafficFit(topic, answer_json, report, blind_totals(index, eval_dir),
                      blind_totals(fitted, eval_dir))


def _rounded(values: np.ndarray) -> list[float]:
    return [round(float(v), 6) for v in values]


def write_models(root: Path, topic_json: dict, answer_json: dict) -> list[Path]:
    folder = root / MODEL_DIR
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in ((TOPIC_FILE, topic_json), (ANSWER_FILE, answer_json)):
        path = folder / name
        path.write_text(json.dumps(data, ensure_ascii=False, indent=0 if name == TOPIC_FILE
                                   else 2) + "\n", encoding="utf-8")
        written.append(path)
    return written


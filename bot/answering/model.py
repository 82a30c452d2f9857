"""The fitted models the decision applies, read from `knowledge/model/` (written by `maxbot fit`).

- the topic model: is a message about the fund and the alliance (on_topic), about something
  else (off_topic), or small talk (greeting, thanks, goodbye, acknowledgement)? A logistic
  regression over letter n-grams of the message.
- the entry model: which document does a question ask for, or none the knowledge base
  holds? A logistic regression over the letter n-grams of the questions each document was
  asked in (its own phrasings, the question sets'); the answer model weighs its probability
  for each candidate, and how close in letters the question is to the closest question the
  sets asked of that document (the questions are kept in the model). A document it never saw
  (uploaded or added since the fit) has none of these nor an answerable reading (they read
  as missing), and the answer model decides without them.
- the pair model, kept with the entry model: does a document answer a question, read from
  the question's words (how it is asked too: 언제, 얼마, 가능) beside the words the document
  says? A logistic regression over the pairs of the two, fitted on the search's candidates.
- the answer model: is this candidate document the right answer? Gradient-boosted trees over
  the signals of bot/answering/features.py, with the threshold chosen by `maxbot fit` for at
  most a target share of confident wrong answers.

All are plain numbers in JSON, so a reviewer can read them and `maxbot check` can validate
them; applying them needs numpy only. The module is over 400 lines because it holds every
fitted model with the validation of its JSON: what a model file must hold is read in one
place.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from bot.answering.features import FEATURES, NO_ENTRY, EntryReading
from index import Hit, KnowledgeError, Query
from index.letters import LetterMatcher
from index.tfidf import TfidfRows

MODEL_DIR = "model"
TOPIC_FILE = "topic.json"
ANSWER_FILE = "answer.json"
SMALLTALK_FILE = "smalltalk.yaml"
TOPIC_EXAMPLES_FILE = "topic_examples.yaml"
ON_TOPIC, OFF_TOPIC = "on_topic", "off_topic"


def _logistic(log_odds: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-np.clip(log_odds, -700, 700)))


@dataclass(frozen=True)
class TopicModel:
    classes: tuple[str, ...]
    vectorizer: TfidfVectorizer
    coef: np.ndarray  # classes x n-grams
    intercept: np.ndarray
    # A second reading of the same n-grams: is this the kind of question the knowledge base
    # answers (its own phrasings, the answered questions of the sets), or one it cannot (rates,
    # deadlines, forms, what the sets' writers found in no source)?
    answerable_coef: np.ndarray  # n-grams
    answerable_intercept: float
    entries: EntryModel
    _rows: TfidfRows = field(init=False, repr=False)
    _coef_by_ngram: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_rows", TfidfRows(self.vectorizer))
        object.__setattr__(self, "_coef_by_ngram", np.ascontiguousarray(self.coef.T))

    def probabilities(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Per text: the probability of each class (softmax, one row per text), and that the
        knowledge base answers such a question (logistic)."""
        return self._apply([self._rows.row(text) for text in texts])

    def read(self, texts: list[str], questions: list[str]
             ) -> tuple[np.ndarray, np.ndarray, list[EntryReading]]:
        """`probabilities(texts)` and the entry model's reading of each text (as the models
        read it, `texts`; as asked, `questions`), its letter n-grams read once for both (the
        two models read the same n-grams, `maxbot fit` fits them so; otherwise each reads its
        own)."""
        alike = self.vectorizer.ngram_range == self.entries.vectorizer.ngram_range
        ngrams = [self._rows.ngrams(text) for text in texts]
        rows, answerable = self._apply([self._rows.row(text, grams)
                                        for text, grams in zip(texts, ngrams, strict=True)])
        entries = [EntryReading(self.entries.probabilities(text, grams if alike else None),
                                asked, self.entries.pairs.probability)
                   for text, grams, asked in zip(texts, ngrams, self.entries.asked.closeness(
                       questions), strict=True)]
        return rows, answerable, entries

    def _apply(self, rows: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        logits = np.tile(self.intercept, (len(rows), 1))
        answerable = np.full(len(rows), self.answerable_intercept)
        for row, (columns, weights) in enumerate(rows):
            logits[row] += weights @ self._coef_by_ngram[columns]
            answerable[row] += weights @ self.answerable_coef[columns]
        logits -= logits.max(axis=1, keepdims=True)
        odds = np.exp(logits)
        return odds / odds.sum(axis=1, keepdims=True), _logistic(answerable)


class AskedQuestions:
    """The questions the labelled sets asked, each of the document that answers it (or
    NO_ENTRY): per document, a question's letter closeness to the closest of them."""

    def __init__(self, texts: list[str], labels: list[str]) -> None:
        self.texts, self.labels = texts, labels
        self.classes = tuple(sorted(set(labels)))
        number = {label: n for n, label in enumerate(self.classes)}
        self._matcher = LetterMatcher(texts, [number[label] for label in labels],
                                      len(self.classes))

    def closeness(self, questions: list[str]) -> list[dict[str, float]]:
        return [dict(zip(self.classes, row.tolist(), strict=True))
                for row in self._matcher.similarities(questions)]


# How many (word, document) pushes the pair model keeps: a process's questions use a few
# thousand words of a hundred documents.
PAIR_CACHE = 65536


def pair_words(query: Query) -> tuple[str, ...]:
    """The words of a question the pair model reads, as fitted and as served: its terms and
    how it is asked."""
    return (*query.terms, *query.asking)


class PairModel:
    """Does a document answer a question, read from their words together: a logistic
    regression over every pair of a question's word (its terms, and how it is asked: 언제,
    얼마, 가능) and a word the document says (its question and answer), fitted on the search's
    candidates of the labelled questions, right or wrong. A pair's weight is shared by every
    document that says the word: "가능 … 신청" goes with no answer the knowledge base gives,
    whichever entry is about 신청."""

    def __init__(self, intercept: float, weights: dict[str, dict[str, float]]) -> None:
        self.intercept = intercept
        self.weights = weights  # question word -> said word -> weight
        # A word's push for a document is asked of the same few documents again and again.
        self._push = lru_cache(maxsize=PAIR_CACHE)(self._word_push)

    def _word_push(self, word: str, said: frozenset[str]) -> float:
        row = self.weights.get(word)
        if not row:
            return 0.0
        # fsum: exact whatever order the said set (and the hash seed) gives.
        if len(row) > len(said):
            return math.fsum(row[a] for a in said if a in row)
        return math.fsum(w for a, w in row.items() if a in said)

    def probability(self, query: Query, hit: Hit) -> float:
        pushes = [self.intercept, *(self._push(word, hit.said)
                                    for word in dict.fromkeys(pair_words(query)))]
        return 1 / (1 + math.exp(-max(-700.0, min(700.0, math.fsum(pushes)))))


@dataclass(frozen=True)
class EntryModel:
    """Which document a question asks for (see the module's docstring)."""

    classes: tuple[str, ...]  # document ids, and NO_ENTRY
    vectorizer: TfidfVectorizer
    coef_by_ngram: np.ndarray  # n-grams x classes
    intercept: np.ndarray
    asked: AskedQuestions
    pairs: PairModel
    _rows: TfidfRows = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_rows", TfidfRows(self.vectorizer))

    def probabilities(self, text: str, ngrams: list[str] | None = None) -> dict[str, float]:
        """P(class) per document id (and NO_ENTRY): softmax over the classes (`ngrams`: the
        text's n-grams, when read already)."""
        columns, weights = self._rows.row(text, ngrams)
        logits = self.intercept + weights @ self.coef_by_ngram[columns]
        odds = np.exp(logits - logits.max())
        return dict(zip(self.classes, (odds / odds.sum()).tolist(), strict=True))


@dataclass(frozen=True)
class Trees:
    """Gradient-boosted trees, each padded to a complete binary tree of one depth so that all
    trees are walked at once with array indexing (a leaf above that depth passes everything
    left to copies of itself).

    Node i's children are 2i+1 (feature <= split) and 2i+2; `values` hold every node's value
    (leaves last), so that a decision can be explained by what each split added.
    """

    features: tuple[str, ...]
    depth: int
    feature: np.ndarray    # trees x internal nodes
    split: np.ndarray      # trees x internal nodes: go right above this value
    values: np.ndarray     # trees x all nodes
    baseline: float
    # trees x internal nodes: a missing value (a document the entry model never saw) goes
    # right here, as it went when fitted.
    missing_right: np.ndarray

    def _paths(self, rows: np.ndarray) -> np.ndarray:
        """Per row and tree, the node visited at each level (rows x trees x depth+1)."""
        count, inner = self.feature.shape
        # Flat positions, so that each step is one `take`: for the few rows of a question,
        # numpy's per-call overhead is most of the cost.
        feature, split = self.feature.reshape(-1), self.split.reshape(-1)
        missing_right = self.missing_right.reshape(-1)
        tree_start = np.arange(count) * inner
        row_start = np.arange(rows.shape[0])[:, None] * rows.shape[1]
        flat_rows = np.ascontiguousarray(rows).reshape(-1)
        node = np.zeros((rows.shape[0], count), dtype=np.int64)
        path = [node]
        for _ in range(self.depth):
            at = tree_start + node
            value = flat_rows.take(row_start + feature.take(at))
            node = 2 * node + 1 + ((value > split.take(at))
                                   | (np.isnan(value) & missing_right.take(at)))
            path.append(node)
        return np.stack(path, axis=2)

    def probabilities(self, rows: np.ndarray) -> np.ndarray:
        leaves = self._paths(rows)[:, :, -1]
        count, nodes = self.values.shape
        raw = self.baseline + self.values.reshape(-1).take(np.arange(count) * nodes + leaves
                                                           ).sum(axis=1)
        return _logistic(raw)

    def contributions(self, row: np.ndarray) -> list[tuple[str, float]]:
        """Each signal's push on the log-odds for one row (positive: towards yes), strongest
        first: along each tree's path, what a split changed is its feature's."""
        path = self._paths(row[None, :])[0]
        trees = np.arange(self.feature.shape[0])[:, None]
        gains = np.diff(self.values[trees, path], axis=1)
        split = self.feature[trees, path[:, :-1]]
        pushes = np.zeros(len(self.features))
        np.add.at(pushes, split.ravel(), gains.ravel())
        return sorted(zip(self.features, pushes.tolist(), strict=True),
                      key=lambda p: abs(p[1]), reverse=True)


# What the acceptance model adds to the best candidate's signals.
ACCEPT_FEATURES = (*FEATURES, "rank_probability", "rank_margin")
# The column that says whether the fit was taught a candidate's document.
UNSEEN_COLUMN = FEATURES.index("entry_probability")


@dataclass(frozen=True)
class AnswerModel:
    """Two steps: the ranker scores every candidate (is this the right document?); the
    acceptance model looks at the best one beside the runner-up and says whether to serve it.
    The acceptance model is fitted on the decision actually made, one row per question, so
    its probability is calibrated for it."""

    ranker: Trees
    accept: Trees
    # Serve the best candidate from this acceptance probability on ...
    threshold: float
    # ... or from this one when its document is one the fit was not taught (no question was
    # asked of it, or it was added since): the signals learned from the asked questions say
    # nothing of it, so its probabilities run lower, and the fit holds its answers to the same
    # share of wrong ones apart.
    unseen_threshold: float
    # A message that is not answered is queued for the secretariat from this P(on_topic) on.
    on_topic_threshold: float

    def threshold_for(self, row: np.ndarray) -> float:
        """The threshold for the best candidate whose acceptance row this is."""
        return self.unseen_threshold if math.isnan(row[UNSEEN_COLUMN]) else self.threshold

    def best(self, features: np.ndarray) -> tuple[int, float, np.ndarray]:
        """(the best candidate's row, the probability that serving it is right, the
        acceptance model's input row)."""
        ranked = self.ranker.probabilities(features)
        order = np.argsort(-ranked, kind="stable")
        top = int(order[0])
        margin = ranked[top] - (ranked[order[1]] if len(order) > 1 else 0.0)
        row = np.concatenate([features[top], [ranked[top], margin]])
        return top, float(self.accept.probabilities(row[None, :])[0]), row


@dataclass(frozen=True)
class DecisionModels:
    topic: TopicModel
    answer: AnswerModel


# The models last read, by their files' contents: a reload whose models did not change, or
# another copy of the same knowledge, takes them as they are (reading and checking them takes
# over half a second). They are never changed once read.
_last_read: dict[bytes, DecisionModels] = {}


def load_models(root: Path | str) -> DecisionModels:
    """Read and validate the fitted models of a knowledge folder; KnowledgeError on a fault."""
    folder = Path(root) / MODEL_DIR
    raw = {path: _read_bytes(path) for path in (folder / TOPIC_FILE, folder / ANSWER_FILE)}
    key = hashlib.blake2b(b"\0".join(raw.values())).digest()
    models = _last_read.get(key)
    if models is None:
        topic, answer = (_parse_json(path, data) for path, data in raw.items())
        models = DecisionModels(_topic_model(folder / TOPIC_FILE, topic),
                                _answer_model(folder / ANSWER_FILE, answer))
        _last_read.clear()
        _last_read[key] = models
    return models


def models_from_json(topic: dict[str, Any], answer: dict[str, Any], folder: Path
                     ) -> DecisionModels:
    """Models as `maxbot fit` returns them, before they are written to `folder` (named in
    errors); KnowledgeError on a fault, as for the files."""
    return DecisionModels(_topic_model(folder / TOPIC_FILE, topic),
                          _answer_model(folder / ANSWER_FILE, answer))


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise KnowledgeError(path, None, "missing: run `maxbot fit` to write it") from exc


def _parse_json(path: Path, raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise KnowledgeError(path, None, f"not UTF-8 text: {exc.reason}") from exc
    except json.JSONDecodeError as exc:
        raise KnowledgeError(path, exc.lineno, f"invalid JSON: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise KnowledgeError(path, 1, "must be a JSON object")
    return data


def _numbers(path: Path, data: dict[str, Any], key: str, shape: tuple[int, ...]) -> np.ndarray:
    try:
        array = np.asarray(data[key], dtype=np.float64)
    except KeyError as exc:
        raise KnowledgeError(path, None, f"has no {key!r}") from exc
    except (TypeError, ValueError) as exc:
        raise KnowledgeError(path, None, f"{key!r} must hold numbers only") from exc
    if array.shape != shape or not np.all(np.isfinite(array)):
        raise KnowledgeError(path, None,
                             f"{key!r} must be finite numbers of shape {shape}, not {array.shape}")
    return array


def _topic_model(path: Path, data: dict[str, Any]) -> TopicModel:
    classes = data.get("classes")
    ngrams = data.get("ngrams")
    if not isinstance(classes, list) or ON_TOPIC not in classes or OFF_TOPIC not in classes:
        raise KnowledgeError(path, None, f"'classes' must list {ON_TOPIC} and {OFF_TOPIC}")
    if not isinstance(ngrams, list) or not all(isinstance(g, str) for g in ngrams):
        raise KnowledgeError(path, None, "'ngrams' must be a list of text")
    vectorizer = _vectorizer(path, data, ngrams)
    answerable_intercept = data.get("answerable_intercept")
    if not isinstance(answerable_intercept, int | float) or not math.isfinite(
            answerable_intercept):
        raise KnowledgeError(path, None, "'answerable_intercept' must be a number: run "
                             "`maxbot fit`")
    return TopicModel(tuple(classes), vectorizer,
                      _numbers(path, data, "coef", (len(classes), len(ngrams))),
                      _numbers(path, data, "intercept", (len(classes),)),
                      _numbers(path, data, "answerable_coef", (len(ngrams),)),
                      float(answerable_intercept), _entry_model(path, data.get("entries")))


def _entry_model(path: Path, data: Any) -> EntryModel:
    """The entry model, its weights stored sparse: per n-gram, the classes it speaks for."""
    if not isinstance(data, dict):
        raise KnowledgeError(path, None, "'entries' must be an object: run `maxbot fit`")
    classes, ngrams = data.get("classes"), data.get("ngrams")
    if not (isinstance(classes, list) and all(isinstance(c, str) for c in classes)
            and NO_ENTRY in classes and len(set(classes)) == len(classes)):
        raise KnowledgeError(path, None, f"entries: 'classes' must list document ids and "
                             f"{NO_ENTRY!r}, each once")
    if not isinstance(ngrams, list) or not all(isinstance(g, str) for g in ngrams):
        raise KnowledgeError(path, None, "entries: 'ngrams' must be a list of text")
    vectorizer = _vectorizer(path, data, ngrams, part="entries: ")
    where = data.get("weights")
    if not isinstance(where, dict):
        raise KnowledgeError(path, None, "entries: 'weights' must be an object")
    count = len(where.get("values") or ())
    rows = _numbers(path, where, "ngram", (count,))
    columns = _numbers(path, where, "class", (count,))
    if (np.any((rows < 0) | (rows >= len(ngrams)) | (rows != np.round(rows)))
            or np.any((columns < 0) | (columns >= len(classes))
                      | (columns != np.round(columns)))):
        raise KnowledgeError(path, None, "entries: 'weights' must name n-grams and classes "
                             "by number")
    coef = np.zeros((len(ngrams), len(classes)))
    coef[rows.astype(np.int64), columns.astype(np.int64)] = _numbers(path, where, "values",
                                                                      (count,))
    return EntryModel(tuple(classes), vectorizer, coef,
                      _numbers(path, data, "intercept", (len(classes),)),
                      _asked_questions(path, data.get("asked"), set(classes)),
                      _pair_model(path, data.get("pairs")))


def _pair_model(path: Path, data: Any) -> PairModel:
    """The pair model, stored sparse: its words once, and per weight the two words' numbers."""
    if not isinstance(data, dict):
        raise KnowledgeError(path, None, "entries: 'pairs' must be an object: run `maxbot fit`")
    words, where, intercept = data.get("words"), data.get("weights"), data.get("intercept")
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise KnowledgeError(path, None, "entries: pairs: 'words' must be a list of text")
    if not isinstance(intercept, int | float) or not math.isfinite(intercept):
        raise KnowledgeError(path, None, "entries: pairs: 'intercept' must be a number")
    if not isinstance(where, dict):
        raise KnowledgeError(path, None, "entries: pairs: 'weights' must be an object")
    count = len(where.get("values") or ())
    asked = _numbers(path, where, "asked", (count,))
    said = _numbers(path, where, "said", (count,))
    values = _numbers(path, where, "values", (count,))
    if any(np.any((n < 0) | (n >= len(words)) | (n != np.round(n))) for n in (asked, said)):
        raise KnowledgeError(path, None, "entries: pairs: 'weights' must name words by number")
    weights: dict[str, dict[str, float]] = {}
    for a, s, v in zip(asked.astype(np.int64).tolist(), said.astype(np.int64).tolist(),
                       values.tolist(), strict=True):
        weights.setdefault(words[a], {})[words[s]] = v
    return PairModel(float(intercept), weights)


def _asked_questions(path: Path, data: Any, classes: set[str]) -> AskedQuestions:
    if not isinstance(data, dict):
        raise KnowledgeError(path, None, "entries: 'asked' must be an object: run `maxbot fit`")
    texts, labels = data.get("texts"), data.get("labels")
    if not (isinstance(texts, list) and isinstance(labels, list) and len(texts) == len(labels)
            and all(isinstance(t, str) for t in texts)):
        raise KnowledgeError(path, None, "entries: 'asked' must hold as many 'texts' as "
                             "'labels'")
    if not all(isinstance(label, str) and label in classes for label in labels):
        raise KnowledgeError(path, None, "entries: 'asked' 'labels' must be the entry model's "
                             "classes")
    return AskedQuestions(texts, labels)


def _vectorizer(path: Path, data: dict[str, Any], ngrams: list[str], part: str = ""
                ) -> TfidfVectorizer:
    """The n-gram reader of the topic model, or of its `part` (named in errors)."""
    span = data.get("ngram_range")
    if not (isinstance(span, list) and len(span) == 2 and all(isinstance(n, int) for n in span)):
        raise KnowledgeError(path, None, f"{part}'ngram_range' must be two whole numbers")
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=tuple(span), sublinear_tf=True,
                                 vocabulary={g: i for i, g in enumerate(ngrams)})
    try:
        vectorizer.idf_ = _numbers(path, data, "idf", (len(ngrams),))
    except KnowledgeError as exc:
        raise KnowledgeError(path, None, f"{part}{exc.message}") from exc
    return vectorizer


def _answer_model(path: Path, data: dict[str, Any]) -> AnswerModel:
    numbers = {}
    for key in ("threshold", "unseen_threshold", "on_topic_threshold"):
        value = data.get(key)
        if not isinstance(value, int | float) or not 0 <= value <= 1:
            raise KnowledgeError(path, None, f"{key!r} must be a number between 0 and 1")
        numbers[key] = float(value)
    return AnswerModel(_trees(path, data.get("ranker"), "ranker", FEATURES),
                       _trees(path, data.get("accept"), "accept", ACCEPT_FEATURES), **numbers)


def _trees(path: Path, data: Any, name: str, features: tuple[str, ...]) -> Trees:
    if not isinstance(data, dict):
        raise KnowledgeError(path, None, f"{name!r} must be an object of trees")
    if tuple(data.get("features") or ()) != features:
        raise KnowledgeError(path, None,
                             f"{name}: 'features' differ from the code's: run `maxbot fit`")
    depth, count = data.get("depth"), data.get("trees")
    if not isinstance(depth, int) or not 1 <= depth <= 8 or not isinstance(count, int):
        raise KnowledgeError(path, None, f"{name}: 'depth' (1..8) and 'trees' must be whole "
                             "numbers")
    inner, nodes = 2 ** depth - 1, 2 ** (depth + 1) - 1
    feature = _numbers(path, data, "feature", (count, inner))
    if np.any((feature < 0) | (feature >= len(features)) | (feature != np.round(feature))):
        raise KnowledgeError(path, None, f"{name}: 'feature' must hold feature numbers")
    baseline = data.get("baseline")
    if not isinstance(baseline, int | float) or not math.isfinite(baseline):
        raise KnowledgeError(path, None, f"{name}: 'baseline' must be a number")
    missing_right = _numbers(path, data, "missing_right", (count, inner))
    if np.any((missing_right != 0) & (missing_right != 1)):
        raise KnowledgeError(path, None, f"{name}: 'missing_right' must hold 0 or 1")
    return Trees(features, depth, feature.astype(np.int64),
                 _numbers(path, data, "split", (count, inner)),
                 _numbers(path, data, "values", (count, nodes)), float(baseline),
                 missing_right.astype(bool))

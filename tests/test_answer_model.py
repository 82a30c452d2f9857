"""The answer model's trees, walked by bot/answering/model.py, give the probabilities that
scikit-learn's fitted trees give, on the signals of real questions' candidates."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bot.answering import models_of
from bot.answering.candidates import gather, parse, topic_text
from bot.answering.features import FEATURES, UNSEEN, UNSEEN_FEATURES, EntryReading
from bot.answering.fit import ALL_LEFT, EVAL_DIR, TRAINING_SETS, _ranker, complete_trees
from bot.answering.model import Trees
from bot.evaluation import load_questions
from index import KnowledgeIndex


@pytest.fixture(scope="module")
def candidate_rows(real_index: KnowledgeIndex) -> np.ndarray:
    """The signals of every candidate of every fourth question of the sets `maxbot fit` fits
    on: some 16,000 rows, of every kind of question. All of them (fifteen sets then) made
    this fixture and the one-by-one walk 55 s of test time; a third of fifteen sets, 17 s."""
    texts = [q.question for name in TRAINING_SETS for q in load_questions(EVAL_DIR / name)][::4]
    parsed = parse(texts, real_index)
    topic = models_of(real_index).topic
    read = [topic_text(queries[0]) for queries in parsed]
    rows, answerable = topic.probabilities(read)
    on_topic = rows[:, topic.classes.index("on_topic")]
    entries = [EntryReading(topic.entries.probabilities(text), asked,
                            topic.entries.pairs.probability)
               for text, asked in zip(read, topic.entries.asked.closeness(texts), strict=True)]
    found = gather(parsed, on_topic.tolist(), answerable.tolist(), entries, real_index)
    rows = np.vstack([c.features for c in found if c.found])
    # Every third row as for a document uploaded since the fit: its entry probabilities and
    # answerable reading are missing.
    rows[::3, [FEATURES.index(f) for f in UNSEEN_FEATURES]] = UNSEEN
    return rows


def _walked(trees: Trees, row: np.ndarray) -> float:
    """The probability as the trees' definition reads, one tree and one node at a time."""
    raw = trees.baseline
    inner = trees.feature.shape[1]
    for feature, split, values, missing_right in zip(trees.feature, trees.split, trees.values,
                                                     trees.missing_right, strict=True):
        node = 0
        while node < inner:
            value = row[feature[node]]
            right = missing_right[node] if np.isnan(value) else value > split[node]
            node = 2 * node + 1 + int(right)
        raw += values[node]
    return 1 / (1 + np.exp(-raw))


def test_trees_fitted_by_scikit_learn_give_its_probabilities(candidate_rows: np.ndarray
                                                             ) -> None:
    # Any labels make trees to compare; these split on several signals, and on whether the
    # entry model knew the document (so that missing values go right at some splits and left
    # at others).
    unseen = np.isnan(candidate_rows[:, FEATURES.index("entry_probability")])
    labels = ((candidate_rows[:, FEATURES.index("coverage")]
               + candidate_rows[:, FEATURES.index("letters")]) > 1.0) ^ (
        unseen & (candidate_rows[:, FEATURES.index("coverage")] > 0.5))
    fitted = _ranker().fit(candidate_rows, labels)
    written = complete_trees(fitted, FEATURES)
    trees = Trees(FEATURES, written["depth"], np.asarray(written["feature"], dtype=np.int64),
                  np.asarray(written["split"]), np.asarray(written["values"]),
                  written["baseline"], np.asarray(written["missing_right"], dtype=bool))
    sides = np.asarray(written["missing_right"])[np.asarray(written["feature"])
                                                 == FEATURES.index("entry_probability")]
    assert 0 < sides.sum() < len(sides)
    ours = trees.probabilities(candidate_rows)
    theirs = fitted.predict_proba(candidate_rows)[:, 1]
    # Splits are written as fitted (a row may hold the split's very value); leaves are
    # rounded to 9 decimals: 100 leaves and the baseline, each off by at most 5e-10, move a
    # probability by at most a quarter of 5e-8.
    assert len(candidate_rows) > 3000
    assert np.max(np.abs(ours - theirs)) < 2e-8


def test_a_split_of_the_missing_values_from_all_others_is_written_finite_and_walked_alike(
        candidate_rows: np.ndarray) -> None:
    """scikit-learn splits missing values from all others at infinity, which JSON cannot hold
    and the loader refuses (a refit failed so): it is written as ALL_LEFT."""
    unseen = np.isnan(candidate_rows[:, FEATURES.index("entry_probability")])
    fitted = _ranker().fit(candidate_rows, unseen)
    written = complete_trees(fitted, FEATURES)
    json.dumps(written, allow_nan=False)
    feature, split = np.asarray(written["feature"]), np.asarray(written["split"])
    missing_right = np.asarray(written["missing_right"], dtype=bool)
    on_unseen = np.isin(feature, [FEATURES.index(f) for f in UNSEEN_FEATURES])
    assert np.any(on_unseen & (split == ALL_LEFT) & missing_right)
    trees = Trees(FEATURES, written["depth"], feature, split, np.asarray(written["values"]),
                  written["baseline"], missing_right)
    theirs = fitted.predict_proba(candidate_rows)[:, 1]
    assert np.max(np.abs(trees.probabilities(candidate_rows) - theirs)) < 2e-8


def test_the_served_models_trees_give_what_walking_them_one_by_one_gives(
        real_index: KnowledgeIndex, candidate_rows: np.ndarray) -> None:
    ranker = models_of(real_index).answer.ranker
    ours = ranker.probabilities(candidate_rows)
    walked = np.array([_walked(ranker, row) for row in candidate_rows])
    assert np.max(np.abs(ours - walked)) < 1e-12


def test_a_message_read_once_for_the_topic_and_entry_models_gets_their_own_probabilities(
        real_index: KnowledgeIndex) -> None:
    """Answering reads a message's letter n-grams once for both models: the probabilities are
    those each model gives reading the message itself."""
    texts = [q.question for q in load_questions(EVAL_DIR / "train9.yaml")]
    topic = models_of(real_index).topic
    read = [topic_text(queries[0]) for queries in parse(texts, real_index)]
    rows, answerable, entries = topic.read(read, texts)
    alone_rows, alone_answerable = topic.probabilities(read)
    assert np.array_equal(rows, alone_rows) and np.array_equal(answerable, alone_answerable)
    assert [e.probability for e in entries] == [topic.entries.probabilities(t) for t in read]
    assert [e.asked for e in entries] == topic.entries.asked.closeness(texts)

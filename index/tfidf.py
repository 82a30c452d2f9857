"""A fitted scikit-learn `TfidfVectorizer` applied to one short text at a time.

scikit-learn's `transform` checks its input, builds sparse matrices and dispatches through
dataframe libraries on every call: for one question of forty letters that costs some ten
times the arithmetic. `TfidfRows` does the same arithmetic (counts, sublinear tf, idf, L2
norm) straight from the fitted vocabulary.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer


class TfidfRows:
    """A text's tf-idf row as (columns, weights): what the fitted vectorizer's `transform`
    gives, without its per-call overhead."""

    def __init__(self, vectorizer: TfidfVectorizer) -> None:
        self._ngrams = vectorizer.build_analyzer()
        # A vectorizer given its vocabulary (rather than fitted) holds it unchecked until used.
        self._vocabulary: dict[str, int] = getattr(vectorizer, "vocabulary_",
                                                   vectorizer.vocabulary)
        self._dtype = np.dtype(vectorizer.dtype)
        self._idf = np.asarray(vectorizer.idf_, dtype=self._dtype)
        self._sublinear = vectorizer.sublinear_tf

    def ngrams(self, text: str) -> list[str]:
        """The n-grams the vectorizer reads in a text (before its vocabulary is applied)."""
        return self._ngrams(text)

    def row(self, text: str, ngrams: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The text's row; `ngrams`, when given, are its n-grams as `ngrams(text)` reads them
        (read once for several vectorizers that read alike)."""
        # map and Counter count in C: a question has hundreds of n-grams.
        counts = Counter(map(self._vocabulary.get,
                             self._ngrams(text) if ngrams is None else ngrams))
        counts.pop(None, None)  # n-grams the vectorizer does not know
        columns = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        weights = np.fromiter(counts.values(), dtype=self._dtype, count=len(counts))
        if self._sublinear:
            np.log(weights, out=weights)
            weights += 1
        weights *= self._idf[columns]
        norm = np.sqrt(np.dot(weights, weights))
        if norm > 0:
            weights /= norm
        return columns, weights

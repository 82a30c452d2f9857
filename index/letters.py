"""Text compared letter by letter: robust where words are not, to missing spaces and typos.

Korean syllables are taken apart into their jamo (규모 -> ㄱㅠㅁㅗ), so that one wrong vowel
(교모) costs one letter of four, not the whole syllable, and spaces are dropped, so that
국민성장펀드규모 and 국민성장펀드 규모 are the same string.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein
from sklearn.feature_extraction.text import TfidfVectorizer

from index.tfidf import TfidfRows

# Hangul syllables are laid out arithmetically: (initial * 21 + medial) * 28 + final.
_SYLLABLE_BASE, _SYLLABLES = 0xAC00, 11172
_INITIALS = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"
_MEDIALS = "ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ"
_FINALS = " ㄱㄲㄳㄴㄵㄶㄷㄹㄺㄻㄼㄽㄾㄿㅀㅁㅂㅄㅅㅆㅇㅈㅊㅋㅌㅍㅎ"
_NOT_A_LETTER = re.compile(r"[\W_]+")
# Letter n-grams: two letters are half a syllable, four a little more than one.
NGRAMS = (2, 4)


def jamo(text: str) -> str:
    """The text as jamo and lower-case Latin letters and digits, without spaces or punctuation."""
    out = []
    for char in _NOT_A_LETTER.sub("", text.casefold()):
        code = ord(char) - _SYLLABLE_BASE
        if 0 <= code < _SYLLABLES:
            initial, rest = divmod(code, 21 * 28)
            medial, final = divmod(rest, 28)
            out.append(_INITIALS[initial] + _MEDIALS[medial] + _FINALS[final].strip())
        else:
            out.append(char)
    return "".join(out)


class LetterMatcher:
    """Cosine similarity of letter n-grams (tf-idf) between a question and known texts.

    Each known text belongs to an owner (an FAQ entry owns its question and alternates); the
    similarity to an owner is that of its closest text.
    """

    def __init__(self, texts: list[str], owners: list[int], size: int) -> None:
        self.size = size
        vectorizer = TfidfVectorizer(analyzer="char", ngram_range=NGRAMS, sublinear_tf=True,
                                     dtype=np.float32)
        self._rows: TfidfRows | None = None
        if not texts:
            return
        letters = [jamo(t) for t in texts]
        matrix = vectorizer.fit_transform(letters)
        # Each owner's distinct texts (a text repeated, e.g. as written and with its aliases
        # folded, counts towards the idf but is compared once).
        distinct = sorted({(owner, text): row for row, (owner, text)
                           in enumerate(zip(owners, letters, strict=True))}.items())
        matrix = matrix[[row for _, row in distinct]]
        self._owner_of_row = np.asarray([owner for (owner, _), _ in distinct], dtype=np.int64)
        self._rows = TfidfRows(vectorizer)
        # By n-gram: a question's cosines are the weighted sum of its n-grams' columns.
        self._by_ngram = matrix.tocsc()

    def similarities(self, texts: list[str]) -> np.ndarray:
        """One row per text: per owner (0..size-1), the cosine to its closest known text."""
        best = np.zeros((len(texts), self.size), dtype=np.float32)
        if self._rows is None:
            return best
        for row, text in enumerate(texts):
            columns, weights = self._rows.row(jamo(text))
            if columns.size:
                cosines = self._by_ngram[:, columns] @ weights
                # Unbuffered, but a third of reduceat's time over owners of a few texts each
                # (0.05 against 0.17 ms for 31,000 texts of 10,000 owners).
                np.maximum.at(best[row], self._owner_of_row, cosines)
        return best


class VocabularyCorrector:
    """Maps a word the knowledge base never uses to the known word it most likely misspells.

    Compared as jamo, one wrong, missing or extra letter (대츨 for 대출, 귀모 for 규모, 사무굮
    for 사무국) is within reach of a word of four letters or more, two of one of nine or more.
    A misspelling as close to two known words is left alone: it is a guess either way.
    """

    MIN_LETTERS = 4

    def __init__(self, vocabulary: list[str]) -> None:
        self._words = [w for w in vocabulary if len(jamo(w)) >= self.MIN_LETTERS]
        self._letters = [jamo(w) for w in self._words]
        # Words recur from question to question, and each look-up compares the word with the
        # whole vocabulary (0.07 ms at 10,000 passages); kept per vocabulary, bounded.
        self.correct = lru_cache(maxsize=8192)(self._correct)

    def _correct(self, word: str) -> tuple[str, float] | None:
        """The known word and how close it is (0..1), or None when none is close enough."""
        letters = jamo(word)
        if len(letters) < self.MIN_LETTERS or not self._letters:
            return None
        allowed = 1 if len(letters) < 9 else 2
        found = process.extract(letters, self._letters, scorer=Levenshtein.distance,
                                score_cutoff=allowed, limit=2)
        if not found or (len(found) == 2 and found[1][1] == found[0][1]):
            return None
        _, distance, position = found[0]
        return self._words[position], 1 - distance / len(letters)

"""mecab-ko as an alternative to Kiwi, with the same selection rules, for comparing the two.

Needs the optional extra `mecab` (python-mecab-ko, which bundles libmecab and mecab-ko-dic).
mecab cannot add words at runtime, so the glossary's terms become a user dictionary compiled
with the bundled mecab-dict-index (about 0.1 s), once per process and word list.
"""

from __future__ import annotations

import atexit
import hashlib
import shutil
import subprocess
import sys
import tempfile
import threading
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

from index.knowledge import Glossary
from index.terms import SynonymFolder, Term, TermSelector, searched

# mecab-ko-dic gives an inflected chunk (받을 VV+ETM, 예요 VCP+EF) with its morphemes in
# `expression` (받/VV/*+을/ETM/*): split it so that the stem is a term, as Kiwi's would be.
# Compounds (반도체, 국민연금 = 국민/NNG/*+연금/NNG/*) stay whole: Kiwi keeps such words whole
# too, and splitting them agreed less with Kiwi's terms (token F1 on the knowledge base 0.95
# against 0.96 whole; on the question files 0.93 against 0.96).
SPLIT_TYPES = frozenset({"Inflect", "Preanalysis"})
# The model prices a user word like any other noun, so the system dictionary's compounds
# (반도체 = 반+도체, 사무국) and segmentations (금융/위원/회) beat it. Kiwi takes its user words
# first; so does mecab once each costs this much less per character. Per character, so that a
# term is cheaper than the shorter user words it contains (기술투자펀드 over 투자 + 펀드).
# 1500 is the smallest of 300/500/750/1000/1250/1500 that kept every glossary term whole
# before and after particles (직접투자 lost to 직접/MAG + 투자 below it); the eval scores
# were the same from 1000 to 2000.
USER_WORD_BONUS = 1500


class Morph(NamedTuple):
    """One morpheme with the two attributes of Kiwi's tokens that the selection rules read."""

    form: str
    tag: str


class MecabAnalyzer:
    """mecab-ko morphological analysis with the glossary's terms as a user dictionary."""

    name = "mecab"

    def __init__(self, glossary: Glossary) -> None:
        self.glossary = glossary
        # Kiwi's selection rules (tags, stopwords, English stems and aliases, two-digit years),
        # shared with KiwiAnalyzer in index/terms.py.
        self.folder = SynonymFolder(glossary)
        self.selector = TermSelector(glossary, self.folder)

    @cached_property
    def mecab(self):
        from mecab import MeCab

        dictionary = user_dictionary(user_words(self.glossary))
        return MeCab(user_dictionary_path=str(dictionary)) if dictionary else MeCab()

    def morphemes(self, text: str) -> list[Morph]:
        """mecab's analysis with inflected chunks split into their morphemes."""
        out: list[Morph] = []
        for m in self.mecab.parse(text):
            feature = m.feature
            if feature.type in SPLIT_TYPES and feature.expression:
                parts = [p.split("/") for p in feature.expression.split("+")]
                if all(len(p) >= 2 and p[0] and p[1] for p in parts):
                    out.extend(Morph(p[0], p[1]) for p in parts)
                    continue
            out.append(Morph(m.surface, feature.pos))
        return out

    def terms(self, text: str) -> list[Term]:
        return self.selector.select(self.morphemes(self.folder.fold(text)))

    def tokens(self, text: str) -> list[str]:
        return searched(self.terms(text))

    def with_glossary(self, glossary: Glossary) -> MecabAnalyzer:
        return MecabAnalyzer(glossary)

    def terms_many(self, texts: list[str]) -> list[list[Term]]:
        return [self.terms(t) for t in texts]

    def tokens_many(self, texts: list[str]) -> list[list[str]]:
        return [self.tokens(t) for t in texts]


def user_words(glossary: Glossary) -> list[str]:
    """The words Kiwi gets as user words: terms and canonical forms without spaces."""
    words = {*glossary.terms, *glossary.synonyms}
    # A comma or quote would break the dictionary's CSV line.
    return sorted(w for w in words
                  if w.strip() and not any(c.isspace() or c in ',"' for c in w))


_compiled: dict[str, Path] = {}
_lock = threading.Lock()
_workdir: Path | None = None


def user_dictionary(words: list[str]) -> Path | None:
    """A compiled user dictionary holding `words`, built once per process per word list."""
    if not words:
        return None
    key = hashlib.sha256("\n".join(words).encode("utf-8")).hexdigest()[:16]
    with _lock:
        if key not in _compiled:
            _compiled[key] = _compile(user_dictionary_csv(words), _tempdir() / key)
        return _compiled[key]


def user_dictionary_csv(words: list[str]) -> str:
    from mecab import MeCab

    system = MeCab()
    # surface,left-id,right-id,cost,pos,semantic,jongseong,reading,type,start,end,expression;
    # mecab-dict-index -a fills the empty ids and cost from the dictionary's model.
    return "".join(f"{w},,,,{_word_class(system, w)},*,{_final_consonant(w)},{w},*,*,*,*\n"
                   for w in words)


def _word_class(system, word: str) -> str:
    """NNG for a word the system dictionary has as one common noun (투자, 반도체), else NNP.

    Kiwi takes every user word as NNP, but in mecab's model a proper noun rarely takes 하다:
    as NNP, 투자해요 became 투자 + 해요/NNG and 투융자가 투융자 + 가/VV.
    """
    parsed = system.parse(word)
    return "NNG" if len(parsed) == 1 and parsed[0].feature.pos == "NNG" else "NNP"


def _final_consonant(word: str) -> str:
    """mecab-ko-dic's jongseong field: T when the last syllable has a final consonant."""
    last = word[-1]
    return "T" if "가" <= last <= "힣" and (ord(last) - 0xAC00) % 28 else "F"


def _tempdir() -> Path:
    global _workdir
    if _workdir is None:
        _workdir = Path(tempfile.mkdtemp(prefix="maxbot-mecab-"))
        atexit.register(shutil.rmtree, _workdir, ignore_errors=True)
    return _workdir


def _compile(csv: str, folder: Path) -> Path:
    """Assign the model's ids and costs, make the words cheaper, compile them."""
    folder.mkdir(parents=True, exist_ok=True)
    source, costed, target = folder / "user.csv", folder / "costed.csv", folder / "user.dic"
    source.write_text(csv, encoding="utf-8")
    _dict_index(folder, "-a", "-u", costed, source)
    lines = []
    for line in costed.read_text(encoding="utf-8").splitlines():
        fields = line.split(",")
        fields[3] = str(int(fields[3]) - USER_WORD_BONUS * len(fields[0]))
        lines.append(",".join(fields))
    costed.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _dict_index(folder, "-u", target, costed)
    if not target.exists():
        raise RuntimeError(f"mecab-dict-index wrote no {target}")
    return target


def _dict_index(folder: Path, *arguments: object) -> None:
    # A subprocess: mecab-dict-index exits the whole process on a bad line.
    done = subprocess.run([sys.executable, "-m", "mecab", "dict-index", *map(str, arguments)],
                          cwd=folder, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"mecab-dict-index failed ({done.returncode}): "
                           f"{(done.stderr or done.stdout).strip()[-500:]}")

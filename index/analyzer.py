"""Turn text into search tokens: Korean morphemes with domain terms kept whole and aliases folded.

Questions and knowledge go through the same analyzer, so a user who writes 국성펀드, 성장 펀드
or "National Growth Fund" meets the entries written with 국민성장펀드.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Protocol

from index.knowledge import Glossary
from index.terms import HANGUL, SynonymFolder, Term, TermSelector, searched

LATIN = re.compile(r"[A-Za-z]")
# An acronym (M.AX, KEIT, AI, S&P500) is written in Latin letters in Korean text too: it says
# nothing of the language a message is written in.
ACRONYM = re.compile(r"(?<![A-Za-z])[A-Z][A-Z0-9.&]*[A-Z0-9](?![a-z])")


class Analyzer(Protocol):
    """Anything that turns text into search terms."""

    name: str

    def terms(self, text: str) -> list[Term]: ...

    def terms_many(self, texts: list[str]) -> list[list[Term]]: ...

    def tokens(self, text: str) -> list[str]: ...

    def tokens_many(self, texts: list[str]) -> list[list[str]]: ...


def user_words(glossary: Glossary) -> set[str]:
    """The glossary's terms and canonical forms that an analyzer must keep whole."""
    return {t for t in (*glossary.terms, *glossary.synonyms)
            if t.strip() and not any(c.isspace() for c in t)}


# The forms a coordinating particle takes (and the connective endings joining two questions):
# a message without any is not analyzed for them.
COORDINATING = re.compile(r"[가-힣A-Za-z0-9](?:이랑|랑|하고|와|과|고|며|면서|및)\s|\s및\s")
# The connective endings that join two predications ("언제 출범했고 목표는 뭐예요?", "얼마이며
# 기간은 몇 년인가요?"), after a predicate's stem or tense; an auxiliary verb after one makes it
# one predicate ("알고 싶어요", "하고 있어요"). Kiwi's tags, without their irregular-verb marks.
PREDICATION_ENDINGS = ("고", "며", "면서")
PREDICATE_TAGS = ("VCP", "VV", "VA", "VX", "XSV", "XSA", "EP")
# The comitative particles, which join two things (Kiwi: JC) or say "with" (JKB): read as
# "with", one still joins two things asked about when a noun phrase of its own follows it
# ("출범일이랑 첫 투자 집행일은?", "규모랑 최소 가입금액 알려줘"), not when the next word is
# the predicate's ("은행이랑 대화할 수 있어?", "산업부와 함께").
COMITATIVE = ("와", "과", "랑", "이랑", "하고")
NOUN_PHRASE_TAGS = ("NNG", "NNP", "NNB", "NR", "NP", "MM", "SL", "SN", "SH", "XPN", "XSN")


@lru_cache(maxsize=1)
def _loaded_kiwi(words: frozenset[str]):
    """The Kiwi for a set of user words, shared by every index built with them in this
    process: loading one takes half a second and its first analysis as long again, at every
    reload and every copy of the knowledge a test builds. Only the latest set is kept."""
    from kiwipiepy import Kiwi

    # The multi-word dictionary changes no analysis of ours and costs ~190 MB per process.
    kiwi = Kiwi(load_multi_dict=False)
    for word in words:
        kiwi.add_user_word(word, "NNP", 0.0)
    return kiwi


def _noun_phrase_follows(tokens: list, start: int) -> bool:
    """Whether tokens[start:] open with a noun phrase that is asked about as the one before
    it is: it ends the message or a clause (punctuation), takes a topic particle (은, 는, 도)
    or the request's verb ("… 가입금액 알려줘"). A case particle ties it to a predicate that
    the particle's "with" belongs to ("사무국과 미팅을 잡고", "금융권과 접점이 없는데"), and 하다
    or 이다 make it the predicate ("대화할", "협력이에요")."""
    end = start
    while end < len(tokens) and tokens[end].tag in NOUN_PHRASE_TAGS:
        end += 1
    if not any(t.tag not in ("MM", "XPN", "XSN") for t in tokens[start:end]):
        return False
    if end == len(tokens):
        return True
    tag = tokens[end].tag.split("-")[0]
    return tag.startswith(("JX", "JC", "S")) or tag in ("VV", "VX")


class KiwiAnalyzer:
    """Kiwi morphological analysis with the glossary's terms as user words."""

    name = "kiwi"

    def __init__(self, glossary: Glossary) -> None:
        self.glossary = glossary
        self.folder = SynonymFolder(glossary)
        self.selector = TermSelector(glossary, self.folder)

    @cached_property
    def kiwi(self):
        return _loaded_kiwi(frozenset(user_words(self.glossary)))

    @cached_property
    def fingerprint(self) -> str:
        """What a text's tokens depend on besides the text (index/token_cache.py): Kiwi's
        version, the glossary, and the code that folds aliases and picks terms."""
        from importlib.metadata import version

        digest = hashlib.sha256()
        for part in (self.name, version("kiwipiepy"), version("kiwipiepy_model"),
                     json.dumps([sorted(self.glossary.terms),
                                 sorted((k, sorted(v)) for k, v in self.glossary.synonyms.items())],
                                ensure_ascii=False)):
            digest.update(part.encode() + b"\0")
        for module in (Path(__file__), Path(__file__).with_name("terms.py")):
            digest.update(module.read_bytes())
        return digest.hexdigest()

    def with_glossary(self, glossary: Glossary) -> KiwiAnalyzer:
        """An analyzer for a changed glossary that shares this one's loaded Kiwi (loading
        another takes a second and holds the interpreter): new terms are added as user words;
        dropped ones stay known to Kiwi, which only keeps them whole."""
        fresh = KiwiAnalyzer(glossary)
        if "kiwi" in self.__dict__:
            added = user_words(glossary) - user_words(self.glossary)
            if added:
                # It no longer holds exactly the words it was loaded for.
                _loaded_kiwi.cache_clear()
            for word in added:
                self.kiwi.add_user_word(word, "NNP", 0.0)
            fresh.kiwi = self.kiwi
        return fresh

    def terms(self, text: str) -> list[Term]:
        return self.selector.select(self.kiwi.tokenize(self.folder.fold(text)))

    def terms_many(self, texts: list[str]) -> list[list[Term]]:
        """Analyze many texts at once: Kiwi spreads them over its own threads, which run
        without Python's interpreter lock. One text goes the direct way (the threads cost
        more than they save)."""
        if len(texts) == 1:
            return [self.terms(texts[0])]
        folded = [self.folder.fold(t) for t in texts]
        return [self.selector.select(m) for m in self.kiwi.tokenize(folded)]

    def tokens(self, text: str) -> list[str]:
        return searched(self.terms(text))

    def tokens_many(self, texts: list[str]) -> list[list[str]]:
        return [searched(terms) for terms in self.terms_many(texts)]

    def coordinations(self, text: str) -> list[tuple[int, int, bool]]:
        """Where coordinating particles join two things asked about ("출범일이랑 마감일",
        "위치와 전화번호"): (start, end, True), the particle dropped from both; and where a
        connective ending joins two predications ("어디고 … 얼마예요", "출범했고 … 언제예요"):
        (end, end, False), the ending kept with the first ("언제 출범했고", as a comma after it
        leaves it). Kiwi tells them (JC, EC) from the same forms in other roles ("펀드와
        관련된")."""
        if not COORDINATING.search(text):
            return []
        tokens = self.kiwi.tokenize(text)
        found = []
        for n, (before, t, after) in enumerate(
                zip([None, *tokens], tokens, [*tokens[1:], None], strict=False)):
            if t.tag == "JC" or (t.tag == "JKB" and t.form in COMITATIVE
                                 and _noun_phrase_follows(tokens, n + 1)):
                found.append((t.start, t.end, True))
            elif (t.tag == "EC" and t.form in PREDICATION_ENDINGS and before is not None
                  and before.tag.split("-")[0] in PREDICATE_TAGS
                  and (after is None or after.tag.split("-")[0] != "VX")):
                found.append((t.end, t.end, False))
        return found

    def similarity(self, word: str, other: str) -> float:
        """How close two words are in meaning: the cosine of their embeddings in Kiwi's CoNg
        language model (shipped in kiwipiepy-model), 0 for a word the model does not know."""
        try:
            return self.kiwi.morpheme_similarity(word, other)
        except (KeyError, ValueError, RuntimeError):
            return 0.0

    @lru_cache(maxsize=4096)  # noqa: B019 (one analyzer per process; its words are few)
    def nearest(self, word: str) -> frozenset[str]:
        """The words closest in meaning to `word` in the whole language model (its 30 nearest
        morphemes), empty for a word the model does not know."""
        try:
            return frozenset(m.form for m in self.kiwi.most_similar_morphemes(word, top_n=30))
        except (KeyError, ValueError, RuntimeError):
            return frozenset()

class WhitespaceAnalyzer:
    """The baseline: lower-cased words split at spaces and punctuation, nothing else."""

    name = "whitespace"
    _split = re.compile(r"[^\w.]+|(?<!\w)\.|\.(?!\w)")

    def terms(self, text: str) -> list[Term]:
        return [Term(t, "noun") for t in self.tokens(text)]

    def tokens(self, text: str) -> list[str]:
        return [t for t in self._split.split(text.casefold()) if t]

    def terms_many(self, texts: list[str]) -> list[list[Term]]:
        return [self.terms(t) for t in texts]

    def tokens_many(self, texts: list[str]) -> list[list[str]]:
        return [self.tokens(t) for t in texts]

    def with_glossary(self, glossary: Glossary) -> WhitespaceAnalyzer:
        return self


def make_analyzer(name: str, glossary: Glossary) -> Analyzer:
    if name == "kiwi":
        return KiwiAnalyzer(glossary)
    if name == "whitespace":
        return WhitespaceAnalyzer()
    if name == "mecab":
        # Optional (pip install 'maxbot[mecab]'); imported here so Kiwi users need no mecab.
        from index.mecab_analyzer import MecabAnalyzer

        return MecabAnalyzer(glossary)
    raise ValueError(f"unknown analyzer {name!r}: use kiwi, mecab or whitespace")


def detect_language(text: str) -> str:
    """'en' for a question written in English words, else 'ko' (the default: a Hangul syllable
    weighs as two Latin letters, and acronyms count for neither, so "M.AX 뜻" is Korean)."""
    words = ACRONYM.sub(" ", text)
    return "en" if len(LATIN.findall(words)) > 2 * len(HANGUL.findall(words)) else "ko"

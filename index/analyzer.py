"""Turn text into search tokens: Korean morphemes with domain terms kept whole and aliases folded.

Questions and knowledge go through the same analyzer, so a user who writes 국성펀드, 성장 펀드
or "National Growth Fund" meets the entries written with 국민성장펀드.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Protocol

from index.knowledge import Glossary

# Content morphemes by Kiwi tag prefix: nouns, verb and adjective stems, roots, foreign words,
# numbers and hanja. Particles, endings, adverbs and pronouns (뭐, 어디) carry no topic.
CONTENT_TAGS = ("NNG", "NNP", "VV", "VA", "XR", "SL", "SN", "SH")

# Words that every question may contain whatever it asks; they say nothing about the topic.
KOREAN_STOPWORDS = frozenset(
    """
    있 없 하 되 이 아니 알 알리 주 보 싶 맞 같 그렇 어떻 어떠 궁금 말 묻 물어보 여쭈 가 오
    얼마 얼마나 무엇 내용 관련 정도 경우 대하 대해 부분 거 것 수 등 때 좀 요 네 예 혹시
    설명 소개 안내 질문 문의 답변 정보 자세 간단 알다 모르 확인 언제 어디 누구 왜 뭐
    """.split()
)
ENGLISH_STOPWORDS = frozenset(
    """
    a an the is are was were be been being do does did doing have has had of for to in on at
    by with about from as into and or but if than then so that this these those it its what
    which who whom whose when where why how can could would should will shall may might must
    i me my we our you your he she they them their there here tell please know want any some
    much many more most get got give
    """.split()
)

HANGUL = re.compile(r"[가-힣]")
LATIN = re.compile(r"[A-Za-z]")
WORD_CHAR = "A-Za-z0-9"


class Analyzer(Protocol):
    """Anything that turns text into search tokens."""

    name: str

    def tokens(self, text: str) -> list[str]: ...


def _alias_pattern(alias: str) -> str:
    """A pattern for an alias that ignores spaces inside it and respects word starts.

    Short aliases (two characters) must match exactly so that 산은 does not match 산 은행.
    """
    chars = [c for c in alias if not c.isspace()]
    gap = r"\s*" if len(chars) > 2 else ""
    body = gap.join(re.escape(c) for c in chars)
    # A Latin alias must not sit inside a longer Latin word (MAX in MAXIMUM); a Korean one must
    # start a word so that 산은 in 자산은 stays 자산 + 은.
    first, last = chars[0], chars[-1]
    before = rf"(?<![{WORD_CHAR}])" if re.match(rf"[{WORD_CHAR}]", first) else r"(?<![가-힣])"
    after = rf"(?![{WORD_CHAR}])" if re.match(rf"[{WORD_CHAR}]", last) else ""
    return before + body + after


class SynonymFolder:
    """Rewrites every alias in a text to its canonical term, longest alias first."""

    def __init__(self, glossary: Glossary) -> None:
        canonical: dict[str, str] = {}
        for term in glossary.terms:
            canonical.setdefault(self._key(term), term)
        for term, aliases in glossary.synonyms.items():
            canonical[self._key(term)] = term
            for alias in aliases:
                canonical.setdefault(self._key(alias), term)
        self._canonical = canonical
        forms = sorted(canonical, key=len, reverse=True)
        self._pattern = (
            re.compile("|".join(_alias_pattern(f) for f in forms), re.IGNORECASE)
            if forms
            else None
        )

    @staticmethod
    def _key(text: str) -> str:
        return "".join(text.split()).casefold()

    def fold(self, text: str) -> str:
        if self._pattern is None:
            return text
        # Spaces around a replaced term keep Kiwi from gluing it to its neighbours.
        return self._pattern.sub(
            lambda m: f" {self._canonical.get(self._key(m.group(0)), m.group(0))} ", text
        )


class KiwiAnalyzer:
    """Kiwi morphological analysis with the glossary's terms as user words."""

    name = "kiwi"

    def __init__(self, glossary: Glossary) -> None:
        self.glossary = glossary
        self.folder = SynonymFolder(glossary)

    @cached_property
    def kiwi(self):
        from kiwipiepy import Kiwi

        kiwi = Kiwi()
        for term in {*self.glossary.terms, *self.glossary.synonyms}:
            if term.strip() and not any(c.isspace() for c in term):
                kiwi.add_user_word(term, "NNP", 0.0)
        return kiwi

    def tokens(self, text: str) -> list[str]:
        return self._select(self.kiwi.tokenize(self.folder.fold(text)))

    def tokens_many(self, texts: list[str]) -> list[list[str]]:
        """Analyze many texts at once; Kiwi spreads the work over its worker threads."""
        folded = [self.folder.fold(t) for t in texts]
        return [self._select(tokens) for tokens in self.kiwi.tokenize(folded)]

    def _select(self, morphemes) -> list[str]:
        out = []
        for m in morphemes:
            if not m.tag.startswith(CONTENT_TAGS):
                continue
            form = m.form.casefold() if m.tag == "SL" else m.form
            if form in KOREAN_STOPWORDS or form in ENGLISH_STOPWORDS:
                continue
            out.append(form)
        return out


class WhitespaceAnalyzer:
    """The baseline: lower-cased words split at spaces and punctuation, nothing else."""

    name = "whitespace"
    _split = re.compile(r"[^\w.]+|(?<!\w)\.|\.(?!\w)")

    def tokens(self, text: str) -> list[str]:
        return [t for t in self._split.split(text.casefold()) if t]

    def tokens_many(self, texts: list[str]) -> list[list[str]]:
        return [self.tokens(t) for t in texts]


def make_analyzer(name: str, glossary: Glossary) -> Analyzer:
    if name == "kiwi":
        return KiwiAnalyzer(glossary)
    if name == "whitespace":
        return WhitespaceAnalyzer()
    raise ValueError(f"unknown analyzer {name!r}: use kiwi or whitespace")


def detect_language(text: str) -> str:
    """'en' for a question written in English letters, else 'ko'."""
    return "en" if len(LATIN.findall(text)) > 2 * len(HANGUL.findall(text)) else "ko"

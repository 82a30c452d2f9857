"""From an analysis to search terms, the same whichever morphological analyzer made it (Kiwi,
or mecab to compare): which tags and words count, English stems and aliases, two-digit years,
and the glossary's aliases folded to their term before the analysis.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import snowballstemmer

from index.knowledge import Glossary

# Content morphemes by Kiwi tag prefix: nouns, verb and adjective stems, roots, foreign words,
# numbers and hanja. Particles, endings, adverbs and pronouns (뭐, 어디) carry no topic.
CONTENT_TAGS = ("NNG", "NNP", "VV", "VA", "XR", "SL", "SN", "SH")

# Words that every question may contain whatever it asks; they say nothing about the topic.
# The particles among them are what Kiwi leaves as nouns after a glossary term (KEIT랑).
KOREAN_STOPWORDS = frozenset(
    """
    있 없 하 되 이 아니 알 알리 주 보 싶 맞 같 그렇 어떻 어떠 궁금 말 묻 물어보 여쭈 가 오
    얼마 얼마나 무엇 내용 관련 정도 경우 대하 대해 부분 거 것 수 등 때 좀 요 네 예 혹시
    설명 소개 안내 질문 문의 답변 정보 자세 간단 알다 모르 확인 언제 어디 누구 왜 뭐
    가능 가능하 되나 어떤 무슨 궁금하 날짜 시점 시기 일자
    랑 이랑 은 는 을 를 도 만 에 의 와 과 로 께 한테 에게 부터 까지 임 음 뜻 의미
    지금 현재 요즘 이제 최근 예시 정리 다음 이번 지난 동안 며칠 간 이름 명칭
    """.split()
)
ENGLISH_STOPWORDS = frozenset(
    """
    a an the is are was were be been being do does did doing have has had of for to in on at
    by with about from as into and or but if than then so that this these those it its what
    which who whom whose when where why how can could would should will shall may might must
    i me my we our you your he she they them their there here tell please know want any some
    much many more most get got give total overall entire exactly currently go goes going
    over under put
    """.split()
)

ENGLISH_NUMBERS = {w: str(n) for n, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve".split())}
HANGUL = re.compile(r"[가-힣]")
ALIAS_NOISE = re.compile(r"[\s.,·]")
HANGUL_RUN = re.compile(r"[가-힣]{4,}")
HANGUL_WORD = re.compile(r"[가-힣]+")
# Shorter words have too many legitimate neighbours (주가 / 주간) to correct safely.
MIN_TYPO_SYLLABLES = 4
WORD_CHAR = "A-Za-z0-9"


class Term(NamedTuple):
    """A search token and what kind of word it came from."""

    form: str
    # noun (also foreign words and glossary terms) | predicate (verb, adjective) | number |
    # asking: a word of how the question is put (언제, 얼마, 있, 가능), not searched for; the
    # answer model weighs it against the words of each candidate's answer.
    kind: str
    # The word as written, which the token may not be (appli, the stem of apply; 지역, the
    # glossary term for 지방), so that a report can show what people wrote.
    written: str = ""


def _short_korean(alias: str) -> bool:
    """An alias of two characters or fewer ending in Hangul: it may take a particle or run
    into another term (see _alias_parts)."""
    chars = [c for c in alias if not c.isspace()]
    return len(chars) <= 2 and bool(HANGUL.match(chars[-1]))


def _alias_parts(alias: str, follow: str = "") -> tuple[str, str, str, str]:
    """An alias as (look-behind, first character, pattern for the middle, look-ahead): spaces
    inside it are optional and it must start a word.

    Short aliases (two characters) must match exactly so that 산은 does not match 산 은행.
    """
    chars = [c for c in alias if not c.isspace()]
    gap = r"\s*" if len(chars) > 2 else ""
    # Users write M.AX as MAX, M,AX or M·AX: a dot inside an alias stands for any of them.
    middle = "".join(gap + (r"[.,·]?" if c == "." else re.escape(c)) for c in chars[1:])
    # A Latin alias must not sit inside a longer Latin word (MAX in MAXIMUM); a Korean one must
    # start a word so that 산은 in 자산은 stays 자산 + 은.
    first, last = chars[0], chars[-1]
    before = rf"(?<![{WORD_CHAR}])" if re.match(rf"[{WORD_CHAR}]", first) else r"(?<![가-힣])"
    after = rf"(?![{WORD_CHAR}])" if re.match(rf"[{WORD_CHAR}]", last) else ""
    if _short_korean(alias):
        # A short Korean alias may take a particle (맥스는, 산은에) or run into another term
        # (맥스얼라이언스) but not start a longer word (맥스페인).
        after = rf"(?:(?![가-힣]{{2}})|(?={follow}))" if follow else r"(?![가-힣]{2})"
    return before, first, middle, after


def _alias_regex(forms: list[str]) -> re.Pattern[str] | None:
    """One regex for all aliases, longest first, grouped by first character so that the
    engine tries only the aliases that can start where it stands.

    The short Korean aliases share one group and so one look-ahead: it holds every longer
    Korean form they may run into, and written once per alias it made a pattern of 75,000
    characters that took a third of a second to compile at every start and reload.
    """
    groups: dict[tuple[str, str, str], list[str]] = {}
    follow = "|".join(re.escape(f) for f in forms if len(f) > 2 and HANGUL.match(f[0]))
    for form in forms:
        before, first, middle, after = _alias_parts(form, follow)
        if _short_korean(form):
            # After every longer form (sorted so), as a long alias is tried before a short one.
            groups.setdefault((before, "", after), []).append(re.escape(first) + middle)
        else:
            groups.setdefault((before, first.casefold(), ""), []).append(middle + after)
    if not groups:
        return None
    branches = [f"{before}{re.escape(first)}(?:{'|'.join(rests)}){after}"
                for (before, first, after), rests in groups.items()]
    return re.compile("|".join(branches), re.IGNORECASE)


class SynonymFolder:
    """Rewrites every alias in a text to its canonical term, longest alias first."""

    def __init__(self, glossary: Glossary) -> None:
        canonical: dict[str, str] = {}
        written: set[str] = set()
        for term in glossary.terms:
            canonical.setdefault(self._key(term), term)
            written.add(term)
        for term, aliases in glossary.synonyms.items():
            canonical[self._key(term)] = term
            written.update((term, *aliases))
            for alias in aliases:
                canonical.setdefault(self._key(alias), term)
        self._canonical = canonical
        self._typos = _typo_keys(written, canonical)
        self._typo_lengths = sorted({len(k) for k in self._typos}, reverse=True)
        # Patterns from the forms as written: their dots match M.AX, M,AX and MAX alike.
        forms = sorted(written, key=lambda f: len(self._key(f)), reverse=True)
        self._pattern = _alias_regex(forms)

    @staticmethod
    def _key(text: str) -> str:
        """Spaces and the dots users vary (M.AX, M,AX, MAX) do not tell aliases apart."""
        return ALIAS_NOISE.sub("", text).casefold()

    def canonical(self, word: str) -> str:
        """The term a single word stands for (itself if it is no alias)."""
        return self._canonical.get(self._key(word), word)

    def fold(self, text: str) -> str:
        text = self._fix_typos(text)
        if self._pattern is None:
            return text
        # Spaces around a replaced term keep Kiwi from gluing it to its neighbours.
        return self._pattern.sub(
            lambda m: f" {self._canonical.get(self._key(m.group(0)), m.group(0))} ", text
        )


    def _fix_typos(self, text: str) -> str:
        """Replace a long Korean term written with one wrong syllable (국민성장펀듣) by the term."""
        if not self._typos:
            return text
        out, last = [], 0
        for run in HANGUL_RUN.finditer(text):
            word, start = run.group(0), 0
            while start < len(word):
                found = self._typo_at(word, start)
                if found:
                    length, term = found
                    out.append(text[last: run.start() + start])
                    out.append(f" {term} ")
                    last = run.start() + start + length
                    start += length
                else:
                    start += 1
        out.append(text[last:])
        return "".join(out)

    def _typo_at(self, word: str, start: int) -> tuple[int, str] | None:
        for length in self._typo_lengths:
            window = word[start: start + length]
            if len(window) < length or window.casefold() in self._canonical:
                continue
            for i in range(length):
                term = self._typos.get(window[:i] + "?" + window[i + 1:])
                if term:
                    return length, term
        return None


def _typo_keys(written: set[str], canonical: dict[str, str]) -> dict[str, str]:
    """Keys with one syllable blanked ('국민성장펀?') for one-word Korean forms of 4+ syllables.

    Phrases (몇 년짜리) are left out: a wrong syllable there is usually another question
    (몇조짜리). A key that two different terms share is dropped: such a typo is ambiguous.
    """
    keys: dict[str, str | None] = {}
    for form in written:
        if len(form) < MIN_TYPO_SYLLABLES or not HANGUL_WORD.fullmatch(form):
            continue
        term = canonical[form.casefold()]
        for i in range(len(form)):
            key = form[:i] + "?" + form[i + 1:]
            keys[key] = term if keys.get(key, term) == term else None
    return {k: v for k, v in keys.items() if v is not None}


class TermSelector:
    """Which morphemes of an analysis become search terms, and as what: content tags only,
    stopwords dropped, English words stemmed and read through the glossary's English
    aliases, two-digit years made four, aliases split off by the analyzer folded."""

    def __init__(self, glossary: Glossary, folder: SynonymFolder) -> None:
        self.folder = folder
        self._stemmer = snowballstemmer.stemmer("english")
        # English aliases by stem, so that "invested" finds the term "invest" stands for.
        self._english = {
            self._stemmer.stemWord(alias.casefold()): term
            for term, aliases in glossary.synonyms.items()
            for alias in aliases
            if re.fullmatch(r"[A-Za-z]+", alias)
        }

    def select(self, morphemes) -> list[Term]:
        """The terms of an analysis: morphemes with `form` and `tag` as Kiwi tags them (the
        stopwords as "asking" terms, which are not searched: see `searched`)."""
        out: list[Term] = []
        for i, m in enumerate(morphemes):
            tag = m.tag
            if not tag.startswith(CONTENT_TAGS):
                continue
            # Korean has no case; folding all forms lets M.AX meet m.ax wherever Kiwi tags it.
            form = m.form.casefold()
            if tag == "SL":
                if len(form) < 2:  # the s of fund's
                    continue
                if form in ENGLISH_STOPWORDS:
                    out.append(Term(form, "asking"))
                    continue
                if form in ENGLISH_NUMBERS:
                    out.append(Term(ENGLISH_NUMBERS[form], "number"))
                    continue
                stem = self._stemmer.stemWord(form)
                out.append(Term(self._english.get(stem, stem), "noun", form))
            elif form in KOREAN_STOPWORDS:
                out.append(Term(form, "asking"))
            elif tag == "SN":
                out.append(Term(_year(form, morphemes, i), "number"))
            elif tag.startswith(("VV", "VA")):
                out.append(Term(form, "predicate"))
            else:
                # An alias the text folding could not see because it ran into the next word
                # (지방기업: 지방 is 지역's alias), once the analyzer has split it off.
                out.append(Term(self.folder.canonical(form).casefold(), "noun", form))
        return out


def _year(number: str, morphemes, i: int) -> str:
    """'26년' is 2026: two-digit years become four digits so they meet the knowledge's."""
    following = morphemes[i + 1].form if i + 1 < len(morphemes) else ""
    if len(number) == 2 and following == "년":
        return f"20{number}"
    return number


def searched(terms: list[Term]) -> list[str]:
    """The forms of the terms that are searched for (not how the question is put)."""
    return [t.form for t in terms if t.kind != "asking"]

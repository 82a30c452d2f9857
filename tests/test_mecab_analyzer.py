"""The optional mecab-ko analyzer: glossary terms whole, aliases folded, verb stems, eval runs."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("mecab")

from bot.settings import Settings
from index import load_knowledge, make_analyzer
from index.knowledge import Glossary
from index.mecab_analyzer import MecabAnalyzer, user_dictionary, user_words
from tests.conftest import KNOWLEDGE, PROJECT


@pytest.fixture(scope="module")
def glossary() -> Glossary:
    return load_knowledge(KNOWLEDGE).glossary


@pytest.fixture(scope="module")
def mecab(glossary: Glossary) -> MecabAnalyzer:
    analyzer = make_analyzer("mecab", glossary)
    assert isinstance(analyzer, MecabAnalyzer)
    return analyzer


def test_every_glossary_term_stays_whole(mecab: MecabAnalyzer, glossary: Glossary) -> None:
    # mecab-ko-dic alone splits many of them: 반도체 → 반+도체, 금융위원회 → 금융/위원/회.
    broken = {}
    for word in user_words(glossary):
        for text in (word, f"{word}는 뭐예요", f"{word}에 대해", f"{word}의 규모",
                     f"{word}이 뭐야"):
            if word.casefold() not in mecab.tokens(text):
                broken[text] = mecab.tokens(text)
    assert not broken


@pytest.mark.parametrize("question", ["국성펀드 규모", "국민 성장 펀드 규모",
                                      "국민성장펀드규모얼마에요", "NGF 규모는?"])
def test_aliases_and_spacing_fold_to_the_canonical_term(mecab: MecabAnalyzer,
                                                        question: str) -> None:
    assert mecab.tokens(question) == ["국민성장펀드", "규모"]


def test_english_words_are_stemmed_and_mapped_to_terms(mecab: MecabAnalyzer) -> None:
    assert mecab.tokens("How much was invested in chips?") == ["투자", "반도체"]


@pytest.mark.parametrize(("question", "stem"), [("지원받을수있나요", "받"),
                                                ("MAX 얼라이언스 언제 만들어졌어요", "만들"),
                                                ("어디에 투자하면 도와주나요", "돕")])
def test_inflected_verbs_yield_their_stems(mecab: MecabAnalyzer, question: str,
                                           stem: str) -> None:
    predicates = [t.form for t in mecab.terms(question) if t.kind == "predicate"]
    assert stem in predicates


def test_two_digit_years_and_numbers(mecab: MecabAnalyzer) -> None:
    terms = [(t.form, t.kind) for t in mecab.terms("26년 예산 7,000억원")]
    assert ("2026", "number") in terms
    assert ("예산", "noun") in terms


def test_the_user_dictionary_is_compiled_once_per_word_list(glossary: Glossary) -> None:
    words = user_words(glossary)
    assert user_dictionary(words) == user_dictionary(list(words))
    assert user_dictionary(words).exists()


def test_settings_accept_mecab() -> None:
    assert Settings(analyzer="mecab").analyzer == "mecab"


def test_maxbot_eval_runs_with_mecab() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot", "eval", "tests/eval/questions.yaml",
         "--analyzer", "mecab", "--quiet"],
        cwd=PROJECT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-2].startswith("all") and lines[-1].startswith("wrong")

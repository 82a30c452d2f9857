"""The knowledge's analyzed texts are kept between starts (index/token_cache.py): a start that
finds them analyzes nothing and serves the same answers; a damaged or foreign file is
analyzed around."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from bot.answering import answer
from bot.knowledge import load_knowledge
from index import KnowledgeIndex, build_index
from index.analyzer import KiwiAnalyzer
from tests.conftest import KNOWLEDGE

QUESTIONS = ["국민성장펀드 규모는 얼마예요?", "사무국 전화번호 알려주세요",
             "엠닥스 얼라이언스가 뭐야", "국성펀드 대츨 금리 몇 %예요?", "반도체에 얼마 들어가요"]
ANALYZED = "texts analyzed"


def _decisions(index: KnowledgeIndex) -> list[tuple[str, str | None, float]]:
    return [(a.status, a.document.id if a.document else None, round(a.probability, 12))
            for a in map(lambda q: answer(q, index), QUESTIONS)]


def test_a_second_start_reads_the_analyzed_knowledge_and_answers_alike(
        real_index: KnowledgeIndex, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="index.token_cache")
    cold = build_index(real_index.knowledge, real_index.analyzer, tmp_path)
    [written] = tmp_path.glob("tokens-*.json")
    assert ANALYZED in caplog.text
    caplog.clear()

    warm = build_index(real_index.knowledge, real_index.analyzer, tmp_path)
    assert ANALYZED not in caplog.text, "nothing analyzed again"
    assert warm.bm25.doc_freqs == cold.bm25.doc_freqs == real_index.bm25.doc_freqs
    assert _decisions(warm) == _decisions(real_index)
    # The language model's nearest words of our nouns are kept too: 촉구 is among 당부's.
    assert warm.stand_in("촉구")[::2] == real_index.stand_in("촉구")[::2] == ("당부", "related")
    assert list(tmp_path.glob("tokens-*.json")) == [written]


@pytest.mark.parametrize("damage", ["{not json", json.dumps({"국민성장펀드": "not a list"}),
                                    json.dumps(["a", "list"])])
def test_a_damaged_file_is_analyzed_around_and_written_again(
        damage: str, real_index: KnowledgeIndex, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    build_index(real_index.knowledge, real_index.analyzer, tmp_path)
    [written] = tmp_path.glob("tokens-*.json")
    written.write_text(damage, encoding="utf-8")
    index = build_index(real_index.knowledge, real_index.analyzer, tmp_path)
    assert "the knowledge is analyzed" in caplog.text
    assert index.bm25.doc_freqs == real_index.bm25.doc_freqs
    assert _decisions(index) == _decisions(real_index)
    assert isinstance(json.loads(written.read_text(encoding="utf-8")), dict)


def test_another_glossary_reads_another_file(tmp_path: Path) -> None:
    """Aliases change how a text is read (국성펀드 is 국민성장펀드): tokens of one glossary are
    never served to another."""
    knowledge = load_knowledge(KNOWLEDGE)
    fewer = type(knowledge.glossary)(knowledge.glossary.terms, {
        term: aliases for term, aliases in knowledge.glossary.synonyms.items()
        if term != "국민성장펀드"})
    assert fewer != knowledge.glossary
    assert KiwiAnalyzer(fewer).fingerprint != KiwiAnalyzer(knowledge.glossary).fingerprint
    assert KiwiAnalyzer(knowledge.glossary).fingerprint == KiwiAnalyzer(
        load_knowledge(KNOWLEDGE).glossary).fingerprint

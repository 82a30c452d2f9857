"""Answers read like a person wrote them to the question asked: "네." only to a yes/no question,
no figure said twice in a row, and a short source line with a button per public source."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.answering import answer
from bot.answering.wording import asks_yes_or_no
from bot.replies import render_answer, to_plain_text
from index import FaqEntry, load_index, load_knowledge
from testing.harness import RunningBot, bot_settings, running_bot
from tests.conftest import CACHE_DIR, KNOWLEDGE

# A figure as the answers write it: 150조원, 1조 5천억원, 7,000억원, 40%, 12개.
FIGURE = re.compile(r"\d[\d,.]*(?:\s*조(?:\s*\d[\d,.]*\s*천?억)?|\s*천?억|\s*만)?\s*(?:원|%|개)")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _texts(entry: FaqEntry) -> list[str]:
    return [t for t in (entry.answer, entry.answer_en) if t]


@pytest.mark.parametrize(("question", "yes_or_no"), [
    ("바이오 산업도 국민성장펀드 투자 대상인가요?", True),
    ("지방 기업이나 지역 프로젝트에도 투자하나요?", True),
    ("150조 맞죠", True),
    ("Does the fund invest in bio?", True),
    ("바이오 투자", False),
    ("펀드 규모?", False),
    ("지방 프로젝트에는 얼마나 투자하나요?", False),
    ("bio investment", False),
    ("How much goes to bio?", False),
])
def test_a_question_is_yes_or_no_when_it_asks_about_a_predicate_without_a_question_word(
        question: str, yes_or_no: bool) -> None:
    assert asks_yes_or_no(question) is yes_or_no


def test_the_yes_that_opens_an_answer_is_said_only_to_a_yes_or_no_question(real_index) -> None:
    """One answer serves every phrasing of its question: "바이오 투자" finds the entry asked
    as "바이오 산업도 … 투자 대상인가요?", whose answer opens with "네."."""
    def reply(question: str) -> str:
        result = answer(question, real_index)
        assert result.status == "answered" and result.document.id == "industries-bio"
        return to_plain_text(render_answer(result, real_index.knowledge))

    assert reply("바이오 산업도 국민성장펀드 투자 대상인가요?").startswith("네. 바이오는")
    assert reply("바이오 투자").startswith("바이오는 AI·반도체와 함께")
    assert reply("Does the fund invest in bio?").startswith("Yes. Bio is")
    assert reply("bio investment").startswith("Bio is named")


def test_no_answer_repeats_a_figure_of_its_opening_sentence_in_the_next() -> None:
    """"총 150조원입니다. … 150조원 이상을 …" says the same thing twice."""
    repeated = []
    for entry in load_knowledge(KNOWLEDGE).entries:
        for text in _texts(entry):
            sentences = SENTENCE_END.split(text)
            if len(sentences) < 2:
                continue
            first, second = ({re.sub(r"\s", "", f) for f in FIGURE.findall(s)}
                             for s in sentences[:2])
            repeated += [(entry.id, figure) for figure in sorted(first & second)]
    assert repeated == []


@pytest.fixture
async def linked(tg, tmp_path: Path, knowledge_copy: Path, database_url: str):
    """The bot serving a knowledge copy in which S1 has a public address."""
    sources = knowledge_copy / "sources.yaml"
    text = sources.read_text(encoding="utf-8")
    sources.write_text(text.replace("  short: {ko: 산업부·금융위 보도자료",
                                    "  url: https://www.korea.kr/briefing/s1\n"
                                    "  short: {ko: 산업부·금융위 보도자료", 1), encoding="utf-8")
    settings = bot_settings(tg, tmp_path, database_url=database_url,
                            knowledge_dir=knowledge_copy)
    async with running_bot(tg, settings, load_index(knowledge_copy, cache_dir=CACHE_DIR)) as bot:
        yield bot


async def test_an_answer_names_its_sources_briefly_with_a_button_to_the_public_one(
        linked: RunningBot) -> None:
    tg = linked.tg
    user = tg.user(7801, "하늘")
    tg.send_text(user, "국민성장펀드 총 규모는?")
    reply = await tg.wait_for_message(user)
    lines = reply.text.splitlines()
    assert lines[0].startswith("150조원입니다. 국민성장펀드는 향후 5년 동안 이 규모 이상을")
    opening, following = reply.text.split(". ")[:2]
    assert "150조원" in opening and "150조원" not in following, "the figure is not said again"
    [source_line] = [line for line in lines if line.startswith("출처:")]
    assert source_line == ("출처: 산업부·금융위 보도자료(2025.12.04.) · 뉴스웨이(2025.12.11.) · "
                           "Newsare(2025.09.10.)")
    links = [button for button in reply.buttons if button[0].startswith("🔗")]
    assert links == [("🔗 산업부·금융위 보도자료", "https://www.korea.kr/briefing/s1")], (
        "a button for the source with a url, none for the two without")
    assert [t for t, _ in reply.buttons[-2:]] == ["👍", "👎"]

    english = tg.user(7802, "Sky", language_code="en")
    tg.send_text(english, "How big is the National Growth Fund?")
    reply = await tg.wait_for_message(english)
    [source_line] = [line for line in reply.text.splitlines() if line.startswith("Source:")]
    assert source_line == ("Source: MOTIE·FSC press release (2025.12.04.) · Newsway (2025.12.11.)"
                           " · Newsare (2025.09.10.)")
    assert ("🔗 MOTIE·FSC press release", "https://www.korea.kr/briefing/s1") in reply.buttons

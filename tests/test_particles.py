"""Korean particles after numbers, Latin names and hex ids: the right form, never 을(를)."""

from __future__ import annotations

import pathlib
import re

import pytest

from bot.particles import particle, with_particle
from bot.replies import render
from testing.harness import RunningBot

# Each digit read aloud (영 일 이 삼 사 오 육 칠 팔 구 십) and the forms that follow it.
DIGITS = [
    (0, "은", "이", "을", "과", "으로"),  # 영
    (1, "은", "이", "을", "과", "로"),    # 일 (ㄹ: 로)
    (2, "는", "가", "를", "와", "로"),    # 이
    (3, "은", "이", "을", "과", "으로"),  # 삼
    (4, "는", "가", "를", "와", "로"),    # 사
    (5, "는", "가", "를", "와", "로"),    # 오
    (6, "은", "이", "을", "과", "으로"),  # 육
    (7, "은", "이", "을", "과", "로"),    # 칠
    (8, "은", "이", "을", "과", "로"),    # 팔
    (9, "는", "가", "를", "와", "로"),    # 구
    (10, "은", "이", "을", "과", "으로"),  # 십
]


@pytest.mark.parametrize("number, topic, subject, object_, and_, by", DIGITS)
def test_particles_after_the_numbers_zero_to_ten_follow_their_korean_reading(
        number: int, topic: str, subject: str, object_: str, and_: str, by: str) -> None:
    # Asked with either form of each pair, as a template writer may write it.
    for asked in (("은", "는"), ("이", "가"), ("을", "를"), ("과", "와"), ("으로", "로")):
        expected = {"은": topic, "이": subject, "을": object_, "과": and_, "으로": by}[asked[0]]
        assert [particle(number, a) for a in asked] == [expected, expected]
    assert particle(str(number), "을") == object_, "a number given as text reads the same"


@pytest.mark.parametrize("number, expected", [
    (13, "으로"), (20, "으로"), (100, "으로"), (1000, "으로"), (10_000, "으로"), (21, "로"),
    (105, "로"), (7000, "으로"), (100_000_000, "으로"), (1_000_000_000_000, "로"),
])
def test_larger_numbers_are_read_by_their_last_digit_or_largest_unit(number: int,
                                                                     expected: str) -> None:
    # 십삼 십 백 천 만 이십일 백오 칠천 억 조
    assert particle(number, "로") == expected


# Letters as Korean speakers name them: only 엘, 엠, 엔, 알 end in a consonant.
LETTERS = {letter: ("을", "으로") if letter in "mn" else ("을", "로") if letter in "lr"
           else ("를", "로") for letter in "abcdefghijklmnopqrstuvwxyz"}


@pytest.mark.parametrize("letter", sorted(LETTERS))
def test_particles_after_latin_letters_follow_the_letter_name(letter: str) -> None:
    object_, by = LETTERS[letter]
    for written in (letter, letter.upper(), f"file.{letter}", f"M.A{letter.upper()}"):
        assert (particle(written, "을"), particle(written, "로")) == (object_, by), written


@pytest.mark.parametrize("word, expected", [
    ("795475c389c7", "795475c389c7로"),   # ends in 7, 칠
    ("c7", "c7로"),
    ("795475c389c0", "795475c389c0으로"),  # a hex id is read digit by digit: 0 영, not 십
    ("a1b2c3d4e5f6", "a1b2c3d4e5f6으로"),  # 육
    ("deadbeef00ff", "deadbeef00ff로"),   # 에프
    ("9f3e2a", "9f3e2a로"),               # 에이
    ("#2", "#2로"),
    ("접수번호 3", "접수번호 3으로"),
    ("report.pdf", "report.pdf로"),
    ("정책 문서", "정책 문서로"),
    ("정책 문건", "정책 문건으로"),
    ("서울", "서울로"),
    ("1,000", "1,000으로"),   # 천
    ("12,345", "12,345로"),   # 오
    ("10%", "10%로"),         # 퍼센트
    ("「자료」", "「자료」로"),
])
def test_hex_ids_names_and_hangul_take_the_right_form(word: str, expected: str) -> None:
    assert with_particle(word, "으로") == expected


def test_a_word_nothing_in_which_can_be_read_keeps_both_forms() -> None:
    assert with_particle("…", "을") == "…을(를)"


def test_the_templates_put_no_fallback_particle_after_a_value() -> None:
    templates = pathlib.Path(__file__).resolve().parent.parent / "bot" / "templates"
    fallback = re.compile(r"(\}\}|</\w+>)\s?(은\(는\)|이\(가\)|을\(를\)|과\(와\)|\(으\)로|"
                          r"(은|는|이|가|을|를|과|와|으로|로)(?![가-힣]))")
    found = [f"{path.name}: {m.group(0)}" for path in sorted(templates.rglob("*.j2"))
             for m in fallback.finditer(path.read_text(encoding="utf-8"))
             if not m.group(1).startswith("</") or "{{" in _before_tag(path, m)]
    assert found == []


def _before_tag(path: pathlib.Path, match: re.Match) -> str:
    """The text inside the tag a particle follows: a value there needs the filter."""
    text = match.string[: match.start()]
    return text[text.rfind(">") + 1:]


def test_messages_render_numbers_and_versions_with_the_right_particle() -> None:
    assert render("tofaq_refused", followup_id=2, missing=True).startswith("#2는 없는")
    assert render("tofaq_refused", followup_id=1, missing=True).startswith("#1은 없는")
    closed = render("secretariat_closed", followup_id=2, kb_gap=False, by="김사무")
    assert "#2를 답변 없이 종료" in closed


async def test_the_third_followup_is_given_as_reference_3_with_euro(bot: RunningBot) -> None:
    user = bot.tg.user(120, "삼번")
    for question in ("신청서 양식 어디서 받아요?", "담당자 전화번호 알려줘요",
                     "펀드 운용사 수수료는 몇 %인가요?"):
        bot.tg.send_text(user, question)
        await bot.tg.wait_for_message(user)
    followups = await bot.followups()
    assert [f.id for f in followups] == [1, 2, 3]
    replies = [m.text for m in bot.tg.messages_to(user)]
    assert "접수번호 1로" in replies[0]
    assert "접수번호 3으로" in replies[2] and "(으)" not in replies[2]

"""Korean particles (josa) after any word the templates put in: a number, a Latin name, a hex id.

Which form of a particle follows a word depends on how the word *sounds* when read aloud: after
a final consonant (받침) 은·이·을·과·으로, after a vowel 는·가·를·와·로, and 로 after ㄹ as after a
vowel. Hangul shows its final consonant; for the rest we read the word as Korean speakers do:
numbers as Sino-Korean numerals (3 삼, 10 십, 100 백), Latin text and hex ids by the name of
their last letter or digit (c 씨, L 엘, 7 칠).
"""

from __future__ import annotations

import re

# The form after a final consonant, the form after a vowel. 으로/로 is chosen apart (ㄹ).
PAIRS: dict[str, tuple[str, str]] = {
    "은": ("은", "는"), "는": ("은", "는"),
    "이": ("이", "가"), "가": ("이", "가"),
    "을": ("을", "를"), "를": ("을", "를"),
    "과": ("과", "와"), "와": ("과", "와"),
    "으로": ("으로", "로"), "로": ("으로", "로"),
    "이나": ("이나", "나"), "나": ("이나", "나"),
    "이라": ("이라", "라"), "라": ("이라", "라"),
    "이에요": ("이에요", "예요"), "예요": ("이에요", "예요"),
}

# The final consonant of each spoken form, as the index of the jongseong (0: none, 8: ㄹ).
NONE, RIEUL = 0, 8
_DIGIT_NAMES = "영일이삼사오육칠팔구"  # 0 영 … 9 구
# Letters as Korean speakers name them: 에이, 비, 씨, … 엘, 엠, 엔, … 알, …; only these four
# end in a consonant.
_LETTER_NAMES = {"a": "에이", "b": "비", "c": "씨", "d": "디", "e": "이", "f": "에프", "g": "지",
                 "h": "에이치", "i": "아이", "j": "제이", "k": "케이", "l": "엘", "m": "엠",
                 "n": "엔", "o": "오", "p": "피", "q": "큐", "r": "알", "s": "에스", "t": "티",
                 "u": "유", "v": "브이", "w": "더블유", "x": "엑스", "y": "와이", "z": "제트"}
# A number ending in zeros is read by its largest unit: 10 십, 100 백, 1000 천, 10⁴ 만 (and
# 십만, 백만, 천만), 10⁸ 억, 10¹² 조.
_UNITS = {1: "십", 2: "백", 3: "천", 4: "만", 8: "억", 12: "조"}
_HEX_ID = re.compile(r"[0-9a-f]*[a-f][0-9a-f]*", re.IGNORECASE)
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_LAST = re.compile(r"([0-9]+|[A-Za-z]|[가-힣])[^0-9A-Za-z가-힣]*$")


def _final(syllable: str) -> int:
    """The final consonant (jongseong index) of one Hangul syllable."""
    return (ord(syllable) - 0xAC00) % 28


def _number_name(digits: str) -> str:
    """The last spoken syllable of a number read as Sino-Korean: 3 삼, 20 이십, 7000 칠천."""
    number = digits.lstrip("0")
    if not number:
        return "영"
    zeros = len(number) - len(number.rstrip("0"))
    if zeros == 0:
        return _DIGIT_NAMES[int(number[-1])]
    unit = max(u for u in _UNITS if u <= zeros)
    return _UNITS[unit]


def spoken_ending(word: object) -> str | None:
    """The last syllable of `word` read aloud, or None when nothing in it can be read."""
    text = _THOUSANDS.sub("", str(word)).rstrip()
    if text.endswith("%"):
        return "트"  # 퍼센트
    found = _LAST.search(text)
    if found is None:
        return None
    last = found.group(1)
    if "가" <= last[0] <= "힣":
        return last
    if last.isalpha():
        return _LETTER_NAMES[last.lower()][-1]
    # Digits: a hex id (795475c389c7) is read one character at a time, a number as a number.
    token = re.search(r"[0-9A-Za-z]+$", text[: found.end(1)]).group(0)
    if len(token) > len(last) and _HEX_ID.fullmatch(token) and len(token) >= 6:
        return _DIGIT_NAMES[int(last[-1])]
    return _number_name(last)


def particle(word: object, form: str) -> str:
    """The form of the particle `form` (given either way: 을 or 를, 으로 or 로) after `word`.

    >>> particle(3, "로"), particle("#2", "을"), particle("c7", "으로"), particle("PDF", "은")
    ('으로', '를', '로', '는')
    """
    after_consonant, after_vowel = PAIRS[form]
    ending = spoken_ending(word)
    if ending is None:
        return f"{after_consonant}({after_vowel})"  # nothing to read: both forms, as written
    final = _final(ending)
    if after_consonant == "으로":
        return "로" if final in (NONE, RIEUL) else "으로"
    return after_vowel if final == NONE else after_consonant


def with_particle(word: object, form: str) -> str:
    """`word` followed by the right form of the particle: 접수번호 3으로, #2를, c7로."""
    return f"{word}{particle(word, form)}"

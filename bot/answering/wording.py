"""An answer as said to the question asked: the "네." that opens an entry's answer to its own
yes/no question is left out when the asker did not ask yes or no ("펀드 규모", "바이오 투자").

The knowledge keeps the "네.": it answers the entry's listed question, and the index reads it.
"""

from __future__ import annotations

import re

from bot.answering.parts import QUESTION_WORD
from index.analyzer import detect_language

YES_OPENING = re.compile(r"^(?:네|예|Yes)[.,]\s*")
# An English yes/no question opens with an auxiliary or a copula.
ENGLISH_YES_NO = re.compile(r"^(?:is|are|was|were|do|does|did|can|could|will|would|should|"
                            r"shall|may|might|has|have|had|am)\b", re.IGNORECASE)
# A Korean question that asks about a predicate ends in a predicate's ending ("투자하나요?",
# "대상인가요?", "150조 맞죠?", "투자해?"); one that names a topic ends in a noun ("펀드 규모?").
PREDICATE_END = re.compile(r"(?:요|까|니|냐|죠|지|나|가|해|돼|되|이야|거야|맞아|있어|없어)\W*$")


def asks_yes_or_no(question: str) -> bool:
    """Whether "네"/"yes" can answer the question: no question word, and it asks about a
    predicate ("투자하나요?", "대상인가요?") rather than naming a topic ("펀드 규모")."""
    text = question.strip()
    if QUESTION_WORD.search(text):
        return False
    if detect_language(text) == "en":
        return bool(ENGLISH_YES_NO.match(text))
    return bool(PREDICATE_END.search(text))


def as_said(answer: str, yes_or_no: bool) -> str:
    """The answer text for this question: without its bare yes opening unless asked yes/no."""
    return answer if yes_or_no else YES_OPENING.sub("", answer, count=1)

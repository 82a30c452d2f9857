"""Where a message's questions are: the asker's situation before them, and several questions in
one message.

Company staff often write a paragraph about their company before the question ("저는 대구
자동차 부품 2차 협력사에서 재무 담당하고 있습니다. … 알려주실 수 있나요?") or ask two
things at once ("사무국은 어디 있고, 담당자 전화번호도 알려줄래요?"). The situation must not
block the answer, and each question deserves its own answer or follow-up.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# Sentence ends: a question or exclamation mark, a full stop before a space, a line break.
SENTENCE_END = re.compile(r"(?<=[?!？])\s*|(?<=[.。])\s+|\n+")
# A question word and the connective (이)고 end a question, comma or not, space or not
# ("규모는 얼마고 금리는 몇 %예요?", "사무국어디고전화번호뭐예요"): Kiwi may read that 고 as a
# prefix of the next word (고금리) or as a quoting particle.
ASKED_AND = ("얼마", "얼마이", "언제", "언제이", "어디", "어디이", "누구", "누구이", "뭐", "무엇이",
             "얼마였", "언제였", "어디였", "누구였", "뭐였", "무엇이었")
# Inside a sentence, two questions meet at a connective with a comma ("어디 있고, …") or at
# 그리고 / 또 / 아울러 ("…, and also …").
CONNECTIVE = re.compile(r"(?:(?<=[가-힣]고)|(?<=[가-힣]며)|(?<=면서)|(?<=[가-힣]구)),\s*|"
                        r",?\s*(?:그리고|그리구|또한|아울러|(?i:and also|also,?))\s+|"
                        + "|".join(rf"(?<={word}고)(?!요)\s*" for word in ASKED_AND))
# How a Korean (or English) question or request ends: a question mark, an interrogative or
# request ending (joined to the next question: "… 구조 알려주시고, 회의는 …"; formal: "… 확인
# 부탁드립니다"; casual: "담당자 번호 좀") ...
ASKING_END = re.compile(
    r"[?？]\s*$|(?:나요|까요|가요|는지|은지|는가|을까|니까|냐|니|죠|지요|래요|려나|나|까|가|"
    r"줘|주세요|주실래요|주시고|싶어요|싶습니다|궁금합니다|궁금해요|궁금|알려|"
    r"부탁드립니다|부탁합니다|문의드립니다|요청드립니다|바랍니다|좀)\W*$")
# ... or an ending a statement shares with it ("150조예요", "조선 기자재예요", "뭐임").
SHARED_END = re.compile(r"(?:요|임|음)\W*$")
# A question word anywhere: "사무국은 어디 있고, …" asks although it ends in a connective.
QUESTION_WORD = re.compile(r"얼마|언제|어디|누구|누가|몇|무엇|뭐|무슨|어떤|어떻게|어느|왜|"
                           r"(?i:\b(?:what|when|where|who|how|which|why)\b)")
# The asker's situation before 인데/는데 ("저희는 배터리 소재 회사인데, 대출도 되나요?").
SITUATION_ENDINGS = "인데|는데|은데|한데"
SITUATION_CLAUSE = re.compile(rf"[가-힣](?:{SITUATION_ENDINGS})(?:요)?[\s,.]")
# What comes before the question: the situation, or what the asker heard ("현대차가 AI 모델과
# 로봇 투자계획을 발표했다던데, …"; its words are what is asked about, and weigh in full).
BACKGROUND_CLAUSE = re.compile(rf"[가-힣](?:{SITUATION_ENDINGS}|던데)(?:요)?[\s,.]")


def sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE_END.split(text) if s and s.strip()]


def is_question(text: str) -> bool:
    """Whether the text may be a question: one that asks beyond doubt, or one that ends as
    a question may."""
    return asks(text) or bool(SHARED_END.search(text.strip()))


def asks(text: str) -> bool:
    """Whether the text is a question or request beyond doubt: a question mark, a question
    word, an interrogative or request ending. "조선 기자재예요" may be either, and typed while
    a step of /check waits, it answers the step."""
    text = text.strip()
    return bool(ASKING_END.search(text) or QUESTION_WORD.search(text))


# Two things asked with one predicate: "출범일이랑 신청 마감일은 언제예요?" (a coordinating
# particle, found by the analyzer) or "AI에는 얼마, 반도체에는 얼마 배정됐어요?" (a comma
# between questions).
COMMA = re.compile(r",\s*")
Coordinations = Callable[[str], list[tuple[int, int, bool]]]


def question_parts(text: str, coordinations: Coordinations | None = None
                   ) -> list[tuple[str, ...]]:
    """The questions of a message, each as its own text; the whole message when it holds one
    question (or none that can be told apart).

    Each question comes with its readings, the likeliest first: a thing joined to others by a
    coordinating particle may share their words ("AI와 반도체 투자액은" asks the 투자액 of
    both) or not ("출범일이랑 신청 마감일은": 출범일 is whole). The answer takes the first
    reading that can be answered.

    coordinations: where the analyzer found coordinating particles in a text (start, end);
    the things they join share the clause's question ("출범일이랑 마감일은 언제예요?" asks when
    of both).
    """
    said = sentences(text)
    asked = _questions(said, coordinations, is_question)
    if not asked and said:
        # No piece ends as a question does, yet a message asks something: a formal request
        # ("… 요건 확인 부탁드립니다.") or a fragment ("전략위원회 역할이랑 위원 명단"). What
        # it asks is its last sentence, read whole.
        asked = _questions(said[-1:], coordinations, lambda _: True)
    return asked if len(asked) > 1 else [(text,)]


def _questions(said: list[str], coordinations: Coordinations | None,
               asking: Callable[[str], bool]) -> list[tuple[str, ...]]:
    """The questions of the sentences, of their pieces that `asking` holds to ask."""
    asked: list[tuple[str, ...]] = []
    for sentence in said:
        for clause in CONNECTIVE.split(sentence):
            for piece in _comma_questions(clause):
                if not asking(piece):
                    continue
                if coordinations:
                    asked.extend(_conjuncts(piece, coordinations))
                else:
                    asked.append((piece,))
    return asked


def _comma_questions(clause: str) -> list[str]:
    """The clause cut at commas where what comes before is a question of its own."""
    pieces, pending = [], ""
    for piece in COMMA.split(clause.strip()):
        pending = f"{pending}, {piece}" if pending else piece
        if is_question(pending):
            pieces.append(pending.strip())
            pending = ""
    if pending.strip():
        if pieces:
            pieces[-1] = f"{pieces[-1]}, {pending}"
        else:
            pieces.append(pending.strip())
    return pieces


# Shorter than this, what a particle joins is a pronoun or a fragment, not a thing asked about.
MIN_CONJUNCT = 2


def _conjuncts(piece: str, coordinations: Coordinations) -> list[tuple[str, ...]]:
    """The piece cut where the analyzer found coordination (the particles dropped, a
    connective ending kept with what it ends), each part with its readings.

    Two predications ("사무국은 어디고 전화번호는 뭐예요?") are two questions. Of things joined
    by particles, what the last is followed by (its head noun, the predicate) is shared by the
    things before it: "AI와 반도체 투자액은 각각 얼마예요?" reads "AI 투자액은 각각
    얼마예요?", and, should that find no answer, "AI 각각 얼마예요?"; what stands before the
    first thing may be shared by the later ones: "사무국 위치와 전화번호 알려줘" reads
    "전화번호 알려줘", and, should that find no answer, "사무국 전화번호 알려줘".
    """
    out: list[tuple[str, ...]] = []
    things: list[str] = []
    start = 0
    # Things joined before the question are not asked about when the question after them asks
    # its own ("현대차가 AI 모델과 로봇 투자계획을 발표했다던데, 금액은 얼마였나요?" asks one
    # thing); they are when it only asks ("출범일과 장소를 적어야 하는데 알려주시겠어요?").
    background = max((m.end() for m in BACKGROUND_CLAUSE.finditer(piece)), default=0)
    if not QUESTION_WORD.search(piece[background:]):
        background = 0
    for begin, end, joins_things in coordinations(piece):
        if begin < background:
            continue
        left = piece[start:begin].strip()
        if not joins_things and not QUESTION_WORD.search(left):
            # A predication that asks nothing leads to the question after it ("신청하고 받을
            # 수 있어요?" asks one thing).
            continue
        if len(left) >= MIN_CONJUNCT and len(piece[end:].strip()) >= MIN_CONJUNCT:
            things.append(left)
            if not joins_things:
                out.extend(_shared(things))
                things = []
            start = end
    things.append(piece[start:].strip())
    out.extend(_shared(things))
    return out


def _shared(things: list[str]) -> list[tuple[str, ...]]:
    """Things joined by particles, each with the words it may share (see _conjuncts)."""
    if len(things) == 1:
        return [(things[0],)]
    prefix = " ".join(things[0].split()[:-1])
    tail = things[-1].split()[1:]
    out = []
    for number, thing in enumerate(things):
        readings = [thing]
        # A thing of one word before the last shares the last one's head and predicate; one
        # of several words ("국민성장펀드 규모와 M.AX 얼라이언스 출범일은") is whole.
        if number < len(things) - 1 and tail and len(thing.split()) == 1:
            readings = [" ".join([thing, *tail])]
            if len(tail) > 1:
                readings.append(" ".join([thing, *tail[1:]]))
            readings.append(thing)  # "출범일이랑 신청 마감일은": 출범일 is asked whole
        # A later thing may lack the first one's modifier ("사무국 위치와 전화번호"), or have
        # its own ("국민성장펀드 규모와 M.AX 얼라이언스 출범일"): as written first.
        if number > 0 and prefix:
            readings = [*readings, *(f"{prefix} {r}" for r in readings)]
        out.append(tuple(dict.fromkeys(readings)))
    return out


def situation_end(text: str) -> int:
    """Where the asker's situation ends and the question begins; 0 when there is none.

    The situation is every sentence before the last question sentence that follows
    statements, or a clause ending in 인데/는데 before the question.
    """
    end = 0
    position = 0
    seen_statement = False
    for sentence in sentences(text):
        start = text.find(sentence, position)
        position = start + len(sentence)
        if is_question(sentence):
            if seen_statement:
                end = start
            break
        seen_statement = True
    clause = SITUATION_CLAUSE.search(text, end)
    if clause and clause.end() < len(text):
        end = clause.end()
    return end

"""How the bot understands what company staff write: its own phrasings, typos, missing spaces,
their words for ours, the asker's situation, several questions at once, and the four outcomes.
Everything runs on the real analyzer, the real index and the fitted models."""

from __future__ import annotations

import json
import re
import shutil
import textwrap
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from bot.answering import STATUSES, answer, answer_many, models_of
from bot.answering.candidates import parse, topic_text
from bot.answering.features import NO_ENTRY, answers_kind
from bot.answering.fit import Labelled, candidate_rows
from bot.answering.model import load_models
from bot.answering.parts import question_parts
from bot.cli import main
from bot.replies import render_answer, to_plain_text
from index import KnowledgeError, KnowledgeIndex, load_index
from tests.conftest import KNOWLEDGE, write_knowledge

if TYPE_CHECKING:
    from collections.abc import Callable

# Vowels a hurried typist confuses, by medial number (ㅏ/ㅓ, ㅐ/ㅔ, ㅗ/ㅜ, ㅑ/ㅕ, ㅡ/ㅜ, ㅢ/ㅣ).
SWAPS = {0: 4, 4: 0, 1: 5, 5: 1, 8: 13, 13: 8, 2: 6, 6: 2, 18: 13, 20: 19, 19: 20}


def one_typo(text: str) -> str | None:
    """One vowel confused in the middle syllable of the longest Korean word (규모 -> 교모)."""
    words = re.findall(r"[가-힣]{2,}", text)
    if not words:
        return None
    word = max(words, key=len)
    i = len(word) // 2
    initial, rest = divmod(ord(word[i]) - 0xAC00, 588)
    medial, final = divmod(rest, 28)
    medial = SWAPS.get(medial, (medial + 1) % 21)
    return text.replace(word, word[:i] + chr(0xAC00 + initial * 588 + medial * 28 + final) +
                        word[i + 1:], 1)


def test_every_own_phrasing_finds_its_entry_as_written_without_spaces_and_with_a_typo(
        real_index: KnowledgeIndex) -> None:
    cases: dict[str, list[tuple[str, str]]] = {"as written": [], "no spaces": [], "typo": []}
    for entry in real_index.knowledge.entries:
        for text in (entry.question, *entry.alternates):
            cases["as written"].append((entry.id, text))
            if " " in text.strip():
                cases["no spaces"].append((entry.id, text.replace(" ", "")))
            typo = one_typo(text)
            if typo and typo != text:
                cases["typo"].append((entry.id, typo))
    found = {}
    for form, pairs in cases.items():
        results = answer_many([text for _, text in pairs], real_index)
        found[form] = sum(r.status == "answered" and r.document.id == entry_id
                          for (entry_id, _), r in zip(pairs, results, strict=True)) / len(pairs)
    assert len(cases["as written"]) >= 600
    assert found["as written"] == 1.0, found
    assert found["no spaces"] >= 0.98, found
    assert found["typo"] >= 0.85, found


def test_check_reports_a_phrasing_two_entries_share(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    root = write_knowledge(tmp_path / "kb", {"faq/extra.yaml": """\
        category: fund
        entries:
          - id: fund-dates
            question: 펀드는 언제 시작하나요?
            alternates: [펀드 규모]
            answer: 2025년 12월에 시작했습니다.
            sources: [S1]
            as_of: 2025-12-04
        """})
    code = main(["check", "--knowledge-dir", str(root)])
    out = capsys.readouterr().out
    assert code == 1
    assert "phrasing '펀드 규모' belongs to fund-dates, fund-size" in out


@pytest.mark.parametrize(("question", "entry_id"), [
    ("사무굮 어디", "contact-secretariat"),           # ㄱ for ㄲ in 국
    ("국민성장펀드규모얼마에요", "fund-size"),          # no spaces, 얼마에요
    ("국민성장펀드 교모", "fund-size"),                 # 규모 -> 교모
])
def test_typos_and_missing_spaces_reach_the_entry(question: str, entry_id: str,
                                                  real_index: KnowledgeIndex) -> None:
    result = answer(question, real_index)
    assert result.status == "answered" and result.document.id == entry_id


def test_a_misspelt_word_is_read_as_the_known_word_and_a_short_one_is_left_alone(
        real_index: KnowledgeIndex) -> None:
    assert real_index.stand_in("대츨")[::2] == ("대출", "typo")
    assert real_index.stand_in("사무굮")[::2] == ("사무국", "typo")
    assert real_index.stand_in("몃") is None  # one syllable: too many neighbours


def test_the_words_looked_up_in_meaning_are_kept_for_the_recent_ones_only(
        real_index: KnowledgeIndex) -> None:
    """A bot runs for months and users type words we never use: what a long-running index
    keeps of them stays bounded, and an index replaced by a reload is freed at once."""
    # Kept: RELATED_CACHE in a bot; fewer here.
    index = KnowledgeIndex(real_index.knowledge, real_index.analyzer, related_cache=200)
    for number in range(200 + 100):
        assert index.stand_in(f"낯선말{number}") is None
    assert index._related.cache_info().currsize == 200
    gone = weakref.ref(index)
    del index
    assert gone() is None


def test_a_word_stands_in_for_ours_only_when_it_is_among_its_nearest_words(
        small_knowledge: Path) -> None:
    """Kiwi's CoNg model (shipped in kiwipiepy-model) relates 융자 to the knowledge base's 대출
    (융자 is among 대출's nearest words); 심의회 is not among 보고대회's and stays unknown
    although their cosine is 0.81."""
    index = load_index(small_knowledge)
    assert index.analyzer.kiwi.model_type == "cong"
    stand_in = index.stand_in("융자")
    assert stand_in is not None and stand_in[0] == "대출" and stand_in[2] == "related"
    assert 0.6 <= stand_in[1] < 1
    assert load_index(KNOWLEDGE).stand_in("심의회") is None


def test_the_askers_situation_never_blocks_the_answer(real_index: KnowledgeIndex) -> None:
    result = answer("저는 대구에 있는 자동차 부품 2차 협력사에서 재무를 맡고 있습니다. 직원은 "
                    "120명이고 스마트공장 투자를 검토하고 있어요. 국민성장펀드 규모가 얼마인가요?",
                    real_index)
    assert result.status == "answered" and result.document.id == "fund-size"


def test_two_answerable_questions_get_both_answers(real_index: KnowledgeIndex) -> None:
    result = answer("국민성장펀드 규모는 얼마예요? 그리고 사무국은 어디에 있어요?", real_index)
    # Answered part by part, or by one document that says both (the passage fund-overview#1
    # gives the size and where the secretariat is): what the asker sees is both facts.
    assert result.status == "answered" and not result.followup
    reply = to_plain_text(render_answer(result, real_index.knowledge))
    assert "150조" in reply and "한국산업은행" in reply


@pytest.mark.parametrize(("message", "readings"), [
    # The last thing's head and predicate are shared; should that reading find no answer,
    # the predicate alone.
    ("AI와 반도체 투자액은 각각 얼마예요?",
     [("AI 투자액은 각각 얼마예요?", "AI 각각 얼마예요?", "AI"),
      ("반도체 투자액은 각각 얼마예요?",)]),
    # What stands before the first thing, as written first.
    ("사무국 위치와 전화번호 알려줘",
     [("사무국 위치",), ("전화번호 알려줘", "사무국 전화번호 알려줘")]),
    # Two predications share nothing; the first keeps its ending, as before a comma.
    ("사무국은 어디고 전화번호는 뭐예요?", [("사무국은 어디고",), ("전화번호는 뭐예요?",)]),
    ("M.AX 얼라이언스 언제 출범했고 목표 연도는 언제예요?",
     [("M.AX 얼라이언스 언제 출범했고",), ("목표 연도는 언제예요?",)]),
    # Kiwi reads this 랑 as "with" (a case particle, not a coordinating one), but a noun
    # phrase asked about follows it: two things asked.
    ("국민참여형 펀드 규모랑 최소 가입금액 알려줘.",
     [("국민참여형 펀드 규모",),
      ("최소 가입금액 알려줘.", "국민참여형 펀드 최소 가입금액 알려줘.")]),
    # No piece ends as a question does: a fragment, a formal request; the last sentence is
    # what is asked.
    ("전략위원회 역할이랑 위원 명단",
     [("전략위원회 역할",), ("위원 명단", "전략위원회 위원 명단")]),
    ("저희는 배터리 회사입니다. 초저리 대출 5년 총액이랑 담보 요건 확인 부탁드립니다.",
     [("초저리 대출 5년 총액",),
      ("담보 요건 확인 부탁드립니다.", "초저리 대출 5년 담보 요건 확인 부탁드립니다.")]),
    # "With" that belongs to the predicate: one question.
    ("산업은행 사무국과 미팅을 잡고 싶은데 담당 부서 이메일 알려주세요",
     [("산업은행 사무국과 미팅을 잡고 싶은데 담당 부서 이메일 알려주세요",)]),
    ("은행이랑 수시로 대화할 수 있어?", [("은행이랑 수시로 대화할 수 있어?",)]),
    # A question word and the connective 고 end a question, though Kiwi reads that 고 as the
    # prefix of 고금리, or as a quoting particle where no space follows.
    ("초저리 대출 5년 규모는 얼마고 금리는 몇 %예요?",
     [("초저리 대출 5년 규모는 얼마고",), ("금리는 몇 %예요?",)]),
    ("사무국어디고전화번호뭐예요", [("사무국어디고",), ("전화번호뭐예요",)]),
    ("출범일이 언제였고 신청 마감은 언제예요?",
     [("출범일이 언제였고",), ("신청 마감은 언제예요?",)]),
    # A formal or a casual request asks, as a question does.
    ("얼라이언스 간사기관이 어디인지, 그리고 담당자 연락처를 확인 부탁드립니다.",
     [("얼라이언스 간사기관이 어디인지",), ("담당자 연락처를 확인 부탁드립니다.",)]),
    ("펀드 사무국 산은 맞지? 담당자 이메일도 좀",
     [("펀드 사무국 산은 맞지?",), ("담당자 이메일도 좀",)]),
    # A request joined to the next question asks too.
    ("국민성장펀드 결정 구조 알려주시고, 심의위원회 회의는 한 달에 몇 번 열리나요?",
     [("국민성장펀드 결정 구조 알려주시고",), ("심의위원회 회의는 한 달에 몇 번 열리나요?",)]),
    # A predication that asks nothing, or one an auxiliary verb continues, is one question.
    ("신청하고 받을 수 있어요?", [("신청하고 받을 수 있어요?",)]),
    ("출범일이 언제인지 알고 싶어요", [("출범일이 언제인지 알고 싶어요",)]),
    # Things joined in what the asker heard are not asked about when the question asks its
    # own thing: one question ...
    ("현대차가 AI 모델과 로봇 투자계획을 발표했다던데, 투자 금액은 얼마였나요?",
     [("현대차가 AI 모델과 로봇 투자계획을 발표했다던데, 투자 금액은 얼마였나요?",)]),
    # ... but they are when it only asks.
    ("보고서에 출범일과 출범식 장소를 적어야 하는데 알려주시겠어요?",
     [("보고서에 출범일",), ("출범식 장소를 적어야 하는데 알려주시겠어요?",
                          "보고서에 출범식 장소를 적어야 하는데 알려주시겠어요?")]),
])
def test_things_joined_by_a_particle_share_the_clauses_words(
        message: str, readings: list[tuple[str, ...]], real_index: KnowledgeIndex) -> None:
    assert question_parts(message, real_index.analyzer.coordinations) == readings


def test_how_a_question_is_asked_is_not_searched_but_weighed_against_the_answer(
        real_index: KnowledgeIndex) -> None:
    """가능 (is it possible) and 얼마 (how much) are no words to look up; the pair model weighs
    them against what each candidate says: the fund's size answers how much it is, not
    whether one may apply."""
    how_much = real_index.parse("국민성장펀드 규모는 얼마예요?")
    may_apply = real_index.parse("국민성장펀드 규모 신청 가능해요?")
    assert "얼마" in how_much.asking and "가능" in may_apply.asking
    assert not {"얼마", "가능"} & {*how_much.terms, *may_apply.terms, *real_index.idf}
    size = next(h for h in real_index.search(how_much) if h.document.id == "fund-size")
    pairs = models_of(real_index).topic.entries.pairs
    assert pairs.probability(how_much, size) > 2 * pairs.probability(may_apply, size)


def test_what_the_asker_heard_is_not_answered_for_what_they_ask(
        real_index: KnowledgeIndex) -> None:
    """Asked the amount of a plan whose entry gives none, the bot answers nothing: "현대자동차가
    AI 모델" is what the asker heard, not a question of its own that the plan's entry answers."""
    result = answer("자동차 램프 부품을 만드는 회사 전략기획팀입니다. 간담회에서 현대자동차가 AI "
                    "모델과 로봇 관련 투자계획을 발표했다던데, 투자 금액은 구체적으로 얼마였나요?",
                    real_index)
    assert result.status == "unanswered" and not result.parts and result.followup


@pytest.mark.parametrize("message", ["국민성장펀드 규모가 얼마예요? 궁금해요",
                                     "사무국은 어디에 있어요? 알려주세요"])
def test_a_request_after_the_question_is_not_queued_as_a_question(
        message: str, real_index: KnowledgeIndex) -> None:
    """"궁금해요" after the question only says it is asked: the asker is not told it went to
    the secretariat."""
    result = answer(message, real_index)
    assert result.status == "answered" and not result.parts and not result.followup


@pytest.mark.parametrize("message", ["안녕하세요? 국민성장펀드 규모 알려주세요",
                                     "안녕하세요. 국민성장펀드 규모가 얼마예요?"])
def test_a_greeting_before_the_question_is_not_queued_as_a_question(
        message: str, real_index: KnowledgeIndex) -> None:
    """Read beside a question about the fund, "안녕하세요?" was taken for a question about it
    that the knowledge base cannot answer: the secretariat got a greeting to follow up."""
    result = answer(message, real_index)
    assert result.status == "answered" and result.document.id == "fund-size"
    assert not result.parts and not result.followup


def test_each_of_two_things_asked_together_gets_its_own_fact(real_index: KnowledgeIndex) -> None:
    result = answer("출범일이랑 신청 마감일은 언제예요?", real_index)
    launch, deadline = result.parts
    assert launch.status == "answered" and deadline.status == "unanswered"
    assert result.followup


@pytest.mark.parametrize(("message", "known"), [
    ("국민참여형 펀드 규모랑 최소 가입금액 알려줘.", r"6,?000억"),
    ("초저리 대출 5년 총액이랑 담보 요건 확인 부탁드립니다.", r"50조"),
    ("초저리 대출 5년 규모는 얼마고 금리는 몇 %예요?", r"50조"),
])
def test_what_is_known_of_two_things_is_answered_and_the_rest_queued(
        message: str, known: str, real_index: KnowledgeIndex) -> None:
    """The retail fund's size is known, its minimum subscription is not (the loans' total is,
    their collateral is not): the asker gets what is known, and is told the rest went to the
    secretariat."""
    result = answer(message, real_index)
    told, queued = result.parts
    assert told.status == "answered" and queued.status == "unanswered" and result.followup
    reply = to_plain_text(render_answer(result, real_index.knowledge))
    assert re.search(known, reply), reply


def test_one_thing_asked_of_two_parties_is_answered_whole(real_index: KnowledgeIndex) -> None:
    """Read apart, "하나 더, M.AX 얼라이언스" is answered with the alliance's overview and
    "국민성장펀드는 왜 연계해요?" with why they are linked: the entry that answers the whole
    message holds every word it asks about, and stands alone."""
    result = answer("하나 더, M.AX 얼라이언스랑 국민성장펀드는 왜 연계해요?", real_index)
    assert result.status == "answered" and not result.parts and not result.followup
    assert result.document.id == "link-why"


def test_questions_of_a_kind_the_knowledge_base_never_holds_read_as_unanswerable(
        real_index: KnowledgeIndex) -> None:
    """The answerable reading is learned from the labelled questions: asking a rate or a
    deadline of a subject we know reads far less answerable than asking its size."""
    models = models_of(real_index)
    texts = ["국민성장펀드 규모는 얼마예요?", "국민성장펀드 대출 금리는 몇 %예요?",
             "국민성장펀드 신청 마감일은 언제예요?"]
    parsed = parse(texts, real_index)
    _, answerable = models.topic.probabilities(
        [topic_text(q[0]) for q in parsed])
    assert answerable[0] > 0.7
    assert answerable[1] < answerable[0] / 10 and answerable[2] < answerable[0] / 10


@pytest.mark.parametrize(("question", "entry_id", "holds"), [
    # "몇 곳" is answered by "1,300곳"; "몇 군데" by it as well, in the same counter's stead.
    ("M.AX 얼라이언스 참여 기관은 몇 곳이에요?", "alliance-members-count", True),
    ("M.AX 얼라이언스 참여 기관은 몇 군데예요?", "alliance-members-count", True),
    # ... but "몇 조" (money) is not answered by a count of companies, nor by a plan's topic.
    ("현대차 투자계획은 몇 조짜리예요?", "plans-hyundai", False),
    ("M.AX 얼라이언스 참여 기관은 몇 명이에요?", "alliance-members-count", False),
])
def test_a_count_is_answered_in_a_counter_for_the_same_things(
        question: str, entry_id: str, holds: bool, real_index: KnowledgeIndex) -> None:
    entry = next(e for e in real_index.knowledge.entries if e.id == entry_id)
    assert answers_kind(question, entry) is holds


def test_the_fit_judges_an_english_question_by_the_english_answer(
        real_index: KnowledgeIndex) -> None:
    """The bot answers an English question in English: a label that names the English
    answer's words ("together") holds for the entry whose English answer says them."""
    item = Labelled("What did the FSC chairman ask of industry and finance?",
                    must=("together",), answerable=True, realistic=True)
    parsed = parse([item.text], real_index)
    _, right, _, documents, _ = candidate_rows([item], parsed, np.ones(1), np.ones(1),
                                               real_index)
    assert "link-fsc-chair-remarks" in documents[right].tolist()


def test_the_entry_model_names_the_entry_a_new_wording_asks_for_or_none(
        real_index: KnowledgeIndex) -> None:
    """The entry model learned from the questions each entry was asked in which one a new
    wording asks for, and that a fee or a deadline is asked of none."""
    entries = models_of(real_index).topic.entries

    def likeliest(text: str) -> str:
        read = entries.probabilities(topic_text(real_index.parse(text)))
        assert set(read) >= {e.id for e in real_index.knowledge.entries} | {NO_ENTRY}
        assert abs(sum(read.values()) - 1) < 1e-9
        return max(read, key=read.__getitem__)

    assert likeliest("펀드 굴리는 기간이 몇 년이에요") == "fund-period"
    assert likeliest("반도체 쪽에 얼마 들어가요") == "industries-semiconductor"
    assert likeliest("국민성장펀드 보증 수수료는 몇 %예요?") == NO_ENTRY
    assert likeliest("신청서 양식 어디서 받아요?") == NO_ENTRY


def test_an_entry_added_after_the_fit_is_answered_from_its_words_alone(tmp_path: Path) -> None:
    """A document the entry model never saw (uploaded, or added since `maxbot fit`) has no
    entry probability; the decision weighs its other signals and still serves it."""
    root = Path(shutil.copytree(KNOWLEDGE, tmp_path / "knowledge"))
    (root / "faq" / "pilot.yaml").write_text(textwrap.dedent("""\
        category: fund
        entries:
          - id: pilot-consulting-week
            question: 시범 상담 주간은 언제인가요?
            alternates: [시범 상담 주간 일정]
            answer: 시범 상담 주간은 3월 둘째 주입니다.
            sources: [S1]
            as_of: 2026-01-15
        """), encoding="utf-8")
    index = load_index(root)
    assert "pilot-consulting-week" not in models_of(index).topic.entries.classes
    result = answer("시범 상담 주간이 언제예요?", index)
    assert result.status == "answered" and result.document.id == "pilot-consulting-week"


@pytest.mark.parametrize(("message", "status", "intent", "reply_starts"), [
    ("감사합니다", "smalltalk", "thanks", "천만에요"),
    ("안녕하세요", "smalltalk", "greeting", "안녕하세요!"),
    ("안녕히 계세요", "smalltalk", "goodbye", "안녕히 가세요"),
    ("주식 추천해줘", "off_topic", None, "죄송하지만 그 주제는"),
    ("마감일이 언제예요?", "unanswered", None, "죄송합니다. 이 질문에는"),
    ("사무국은 어디에 있어요?", "answered", None, "한국산업은행(KDB)에 설치돼 있습니다"),
])
def test_four_outcomes_each_with_its_reply(message: str, status: str, intent: str | None,
                                          reply_starts: str, real_index: KnowledgeIndex) -> None:
    result = answer(message, real_index)
    assert (result.status, result.intent) == (status, intent)
    assert result.followup == (status == "unanswered")
    assert to_plain_text(render_answer(result, real_index.knowledge)).startswith(reply_starts)
    assert result.status in STATUSES


def test_ask_json_shows_the_probability_and_the_strongest_signals(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", "--json", "국민성장펀드 총 규모는?", "국민성장펀드 규모"]) == 0
    first, listed = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert first["status"] == "answered" and 0.5 < first["probability"] < 1
    assert len(first["signals"]) == 5 and "on_topic" in first
    assert listed["signals"] == {"listed_phrasing": 1.0}


def _split_cut(trees: dict) -> None:
    trees["split"] = trees["split"][1:]


def _missing_side_not_a_side(trees: dict) -> None:
    trees["missing_right"][0][0] = 2


@pytest.mark.parametrize(("damage", "said"), [
    (_split_cut, "'split' must be finite numbers of shape"),
    (_missing_side_not_a_side, "accept: 'missing_right' must hold 0 or 1"),
])
def test_a_broken_model_file_is_refused_with_its_path(
        damage: Callable[[dict], None], said: str, knowledge_copy: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    model = knowledge_copy / "model" / "answer.json"
    data = json.loads(model.read_text(encoding="utf-8"))
    damage(data["accept"])
    model.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(KnowledgeError, match=r"answer\.json"):
        load_models(knowledge_copy)
    assert main(["check", "--knowledge-dir", str(knowledge_copy)]) == 1
    assert f"{model}: {said}" in capsys.readouterr().out



def test_a_model_file_that_is_not_text_is_refused_with_its_path(
        knowledge_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Saved in another encoding (or cut by a copy): reported, never raised at the reload."""
    model = knowledge_copy / "model" / "answer.json"
    model.write_bytes("{\"threshold\": 0.9, \"about\": \"결정\"}".encode("euc-kr"))
    with pytest.raises(KnowledgeError, match=r"answer\.json"):
        load_models(knowledge_copy)
    assert main(["check", "--knowledge-dir", str(knowledge_copy)]) == 1
    assert f"{model}: not UTF-8 text" in capsys.readouterr().out


def test_an_answer_model_without_its_threshold_for_untaught_documents_is_refused(
        knowledge_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A model file written before documents the fit was not taught had a threshold of their
    own would serve them from no threshold at all."""
    model = knowledge_copy / "model" / "answer.json"
    data = json.loads(model.read_text(encoding="utf-8"))
    del data["unseen_threshold"]
    model.write_text(json.dumps(data), encoding="utf-8")
    assert main(["check", "--knowledge-dir", str(knowledge_copy)]) == 1
    assert (f"{model}: 'unseen_threshold' must be a number between 0 and 1"
            in capsys.readouterr().out)

def _class_out_of_range(entries: dict) -> None:
    entries["weights"]["class"][0] = len(entries["classes"])


def _idf_cut(entries: dict) -> None:
    entries["idf"] = entries["idf"][1:]


def _range_not_numbers(entries: dict) -> None:
    entries["ngram_range"] = ["1", 3]


def _asked_of_a_stranger(entries: dict) -> None:
    entries["asked"]["labels"][0] = "no-such-entry"


def _asked_without_its_label(entries: dict) -> None:
    entries["asked"]["texts"].append("국민성장펀드 규모는?")


def _pair_of_no_word(entries: dict) -> None:
    entries["pairs"]["weights"]["said"][0] = len(entries["pairs"]["words"])


def _pairs_missing(entries: dict) -> None:
    del entries["pairs"]


@pytest.mark.parametrize(("damage", "said"), [
    (_class_out_of_range, "entries: 'weights' must name n-grams and classes"),
    (_idf_cut, "entries: 'idf' must be finite numbers of shape"),
    (_range_not_numbers, "entries: 'ngram_range' must be two whole numbers"),
    (_asked_of_a_stranger, "entries: 'asked' 'labels' must be the entry model's classes"),
    (_asked_without_its_label, "entries: 'asked' must hold as many 'texts' as 'labels'"),
    (_pair_of_no_word, "entries: pairs: 'weights' must name words by number"),
    (_pairs_missing, "entries: 'pairs' must be an object: run `maxbot fit`"),
])
def test_a_broken_entry_model_is_refused_with_its_path_and_part(
        damage: Callable[[dict], None], said: str, knowledge_copy: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    model = knowledge_copy / "model" / "topic.json"
    data = json.loads(model.read_text(encoding="utf-8"))
    damage(data["entries"])
    model.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(KnowledgeError, match=r"topic\.json"):
        load_models(knowledge_copy)
    assert main(["check", "--knowledge-dir", str(knowledge_copy)]) == 1
    assert f"{model}: {said}" in capsys.readouterr().out

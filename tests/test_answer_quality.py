"""Answer quality, measured on the project's question set with the real analyzer and index."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bot.answering import answer, answer_entry, answer_many
from bot.answering.fit import blind_sets
from bot.evaluation import (
    EvalQuestion,
    EvalReport,
    evaluate,
    format_report,
    judge,
    load_questions,
)
from bot.knowledge import load_index
from bot.replies import render_answer, said_text, to_plain_text
from index import KnowledgeIndex
from tests.conftest import KNOWLEDGE, PROJECT

EVAL = Path(__file__).parent / "eval"
QUESTIONS = EVAL / "questions.yaml"
# Per question set, the share each kind must reach and the share of confident wrong answers
# it must stay under: a ratchet, raised whenever a change measures better, lowered only where a
# change that measures better overall costs a set a question, with the figures written here.
# The BLIND sets were written blind and are kept unseen: only their totals are shown.
FLOORS = {
    # Session 18, sixth step: a formal request ("… 확인 부탁드립니다") or a casual one ("담당자
    # 번호 좀") asks, as a question does. The blind sets: mixed 239 -> 240, the rest as they
    # were; the sets fitted on: mixed 609 -> 616. Those floors follow.
    # Session 18, fifth step: a question word in the past (언제였고) ends a question as in the
    # present, and a request joined to the next question ("… 알려주시고, …") asks too. The
    # blind sets: mixed 238 -> 239, the rest as they were; the sets fitted on: mixed 605 ->
    # 609. Those floors follow.
    # Session 18, third step: a question word and the connective (이)고 end a question, comma
    # or not ("규모는 얼마고 금리는 몇 %예요?", where Kiwi reads 고금리). The blind sets: in
    # 1,644 -> 1,645, mixed 238, wrong 28 -> 27; the sets fitted on: mixed 593 -> 605 of 784,
    # in 4,542, wrong 43. Those floors follow.
    # Session 18, second step: a message none of whose pieces ends as a question does (a
    # formal request, "… 확인 부탁드립니다."; a fragment, "전략위원회 역할이랑 위원 명단")
    # asks its last sentence, and its parts are found there (bot/answering/parts.py). The
    # blind sets: mixed 237 -> 238 of 301, the rest as they were; the sets fitted on: in 4,540
    # -> 4,542 of 4,791, mixed 585 -> 593 of 784, wrong 44 -> 43. Those floors follow.
    # Session 18: a comitative particle Kiwi reads as "with" (JKB: 출범일이랑, 규모랑) joins
    # two things asked when a noun phrase of their own follows it, as a coordinating one
    # (JC) does (index/analyzer.py). No refit. The blind sets holdout2-15 together (3,184):
    # in 1,643 -> 1,644, unknown 596, mixed 230 -> 237 of 301, off 444, wrong 29 -> 28; the
    # sets fitted on: mixed 569 -> 585 of 784, in, unknown and wrong as they were. The floors
    # of the sets that rose follow (and chatbot-2000's, one below its figure before).
    # Session 16, third step: for a document the fit was not taught (an upload) the topic
    # model's probability is missing too (features.UNSEEN_FEATURES): fitted on what the
    # knowledge base held then, it read a question about an uploaded programme ("AI 바우처
    # 설명회는 언제 열리나요?", which train27 labels off topic) as off topic, and the answer was
    # refused with a pointer. Refit: cross-validated 81.7% at 1.1% wrong, thresholds 0.870 /
    # 0.755. holdout2-14 (2,978): in 1,527 -> 1,530, unknown 558 -> 557, mixed 212 -> 213,
    # wrong 24 -> 28 (0.94%). It cost holdout5 an unknown and a mixed question and three wrong
    # answers (2 -> 5 of 260), holdout9 one "in" and a wrong answer (1 -> 2), holdout10 and
    # holdout13 one "in" each, holdout14 two (117 -> 115) and a wrong answer (5 -> 6).
    # Session 16, second step: a connective ending after a predicate that asks splits two
    # questions ("언제 출범했고 목표 연도는 언제예요?"), and the models fitted on train26-29 as
    # well (twenty-seven sets); cross-validated 81.0% of 3,649 answered right at 1.0% wrong,
    # thresholds 0.875 / 0.735. The blind sets holdout2-14 together (2,978 replies): in
    # 1,499 -> 1,527 of 1,695, unknown 562 -> 558 of 574, mixed 210 -> 212 of 276, off
    # 420 -> 426 of 433, wrong answers 26 -> 24. It cost holdout2 an unknown question (30 ->
    # 29), holdout4 a mixed one (15 -> 14 of 20), holdout6 and holdout8 a mixed one each,
    # holdout7 an unknown one and a wrong answer (1 -> 2 of 266), holdout10 an unknown one and a
    # wrong answer (4 -> 5 of 260), holdout13 two mixed ones (22 -> 20), holdout14 an unknown
    # one (45 -> 44 of 46); of the sets fitted on, one to four "in" or mixed questions each in
    # train5, train10, train11, train13-20 and train22-25, and a wrong answer each in train7
    # (3 -> 4) and train15 (0 -> 1). A refit with another seed moves these figures by tens of
    # questions (see README). Every floor is the new run's figure.
    # Session 16: the models fitted on train20-25 as well (twenty-three sets), and the copy of
    # every fifth question without entry probabilities dropped (the passages' copies stay);
    # cross-validated 81.9% of 3,176 answered right at 0.9% wrong, thresholds 0.860 / 0.755.
    # The blind sets holdout2-13 together (2,747 replies): in 1,343 -> 1,385 of 1,563,
    # unknown 511 -> 517 of 528, mixed 188 -> 190 of 250, off 394 of 406, wrong answers
    # 21 -> 20. holdout14 (new, blind): in 108 -> 114 of 132, wrong 3 -> 6 of 231. It cost
    # holdout4 one "in" (114 -> 113 of 135) and a wrong answer (1 -> 2), holdout5 a wrong
    # answer (2 -> 3), holdout7 an off-topic message (40 -> 39 of 40), holdout8 an unknown
    # question and a wrong answer (0 -> 1), holdout12 two mixed ones (18 -> 16 of 25); of the
    # sets fitted on, train6 one "in", train9 and train10 a mixed question, train11 and
    # train18 a wrong answer each (4 -> 5, 2 -> 3), train23 one (1 -> 2). Every floor is the
    # new run's figure.
    # Session 15: the fit teaches the answer model questions about passages it was not taught
    # (fit.passages_as_new: the knowledge base's passages read as if uploaded after the fit);
    # cross-validated 80.3% answered right at 1.0% wrong for 78.2% at 0.9%, at a threshold of
    # 0.850 for 0.875. The blind sets holdout2-13 together (2,747 replies): in 1,322 -> 1,343
    # of 1,563, unknown 514 -> 511 of 528, mixed 185 -> 188 of 250, off 394 of 406, wrong
    # answers 18 -> 21 (0.66 -> 0.76%). train20-23 (not fitted on): in 533 -> 547 of 679,
    # unknown 232 -> 230 of 239, wrong 12 -> 16 of 1,136. It cost, of the blind sets,
    # holdout7 and holdout8 a mixed question each (and holdout8 one "in", 135 -> 134 of 153),
    # holdout9 an unknown question and a wrong answer (1 -> 2 of 275), holdout10 an unknown
    # and a mixed question and a wrong answer (4 -> 5 of 260), holdout11 an unknown question
    # and a wrong answer (1 -> 2), holdout12 a wrong answer (2 -> 3); of the others train10 an
    # unknown question, train13, train17, train20 and train22 a mixed one, train20 and train21
    # an unknown one, and wrong answers: train6 2 -> 3, train7 4 -> 5, train11 2 -> 4, train14
    # 0 -> 1, train16 0 -> 1, train19 1 -> 2, train20 2 -> 3, train21 7 -> 10. Every floor is
    # the new run's figure.
    # Session 14: the models fitted on train12-19 as well (fifteen sets), each logistic
    # regression solved by Newton's method. The blind sets holdout2-12 together (2,504
    # replies): in 1,143 -> 1,206 of 1,422, unknown 467 -> 468 of 482, mixed 159 -> 165 of
    # 225, off 367 -> 366 of 375, wrong answers 16 -> 17; "in" rose on every blind set but
    # holdout6 (129 -> 128 of 145). It cost holdout4 two wrong answers (0 -> 2 of 245),
    # holdout5 a mixed question (14 -> 13 of 25), holdout6 an unknown one (50 -> 49),
    # holdout7 an unknown one (49 -> 48 of 51), a mixed one (19 -> 18) and a wrong answer
    # (2 -> 3 of 266), holdout9 an off-topic message answered or queued (37 -> 36 of 40), and
    # of the sets fitted on, holdout3 one "in" (36 -> 35 of 40) and train7 one (213 -> 212 of
    # 230). Those floors follow; every other floor rose or held.
    # Session 13: train14 … train19, written blind from the sources by helpers that saw only
    # the seed press release and facts.md (a question identical to a blind set's left out),
    # measured, not yet fitted on; their floors are their first runs.
    # Session 13, the pair model (how the question's words, and how it is asked, go with the
    # words each candidate says; bot/answering/model.py, PairModel), refitted, with a
    # threshold of its own for a document the fit was not taught (AnswerModel.
    # unseen_threshold). The blind sets holdout2-12 together (2,504 replies): in 1,080 ->
    # 1,143 of 1,422, unknown 463 -> 467 of 482, mixed 157 -> 159 of 225, off 368 -> 367 of
    # 375, wrong answers 20 -> 16; "in" rose or held on every blind set (holdout12 95 -> 110
    # of 150). It cost holdout2 a wrong answer (1 -> 2 of 150), holdout10 one (3 -> 4 of
    # 260) and a mixed question (20 -> 19 of 25), holdout7 a mixed question (20 -> 19),
    # holdout5 an off-topic message queued (40 -> 39), chatbot-2000 one more everyday message
    # queued (2 -> 3 of 2,000), and the sets fitted on: questions and holdout one "in" each,
    # train6 four (221 -> 217 of 249) and a wrong answer, train11 a wrong answer, train9 two
    # mixed questions and train13 one. Those floors follow; every other floor rose or held.
    # Session 12: things joined by a particle in what the asker heard ("…AI 모델과 로봇 투자
    # 계획을 발표했다던데, 금액은 얼마였나요?") are not questions of their own when the
    # question after it asks its own thing. The blind sets holdout2-12 together: wrong answers
    # 22 -> 20 of 2,504, every kind unchanged. It cost train5 one answer (214 -> 213 of 244),
    # one that a fragment ("…산업부와 금융위가 얼라이언스") had answered by chance; its floor
    # follows.
    # Session 11, the judge: a fact asked for must be in what the reply gives as the answer
    # (bot.replies.said_text), not in its source line (the press release's date, 2025.12.04)
    # or a related question it suggests. Same replies, stricter count: the blind sets
    # holdout2-12 together in 1,082 -> 1,080 of 1,422 (holdout2 -1, holdout10 -1), mixed
    # 163 -> 157 of 225 (holdout4 -2, holdout6, holdout7, holdout10 -1 each); the sets fitted
    # on lost 0-1 "in", 1-4 mixed, and train7, train9, train10 and train11 one more wrong
    # answer each; questions and holdout one "in" each, now a wrong answer. Those floors
    # follow the stricter count.
    # Session 11: "몇 곳" / "몇 군데" / "몇 건" asked of an answer that counts the same things in
    # another counter ("1,300개 기업·기관") no longer reads as a kind mismatch (COUNTERS in
    # bot/answering/features.py). The blind sets holdout2-12 together (2,504 replies): in
    # 1,071 -> 1,082 of 1,422, mixed 162 -> 163 of 225, unknown, off and wrong answers (22)
    # unchanged; no set lost an answer.
    # Session 10: the answer model weighs how close a question is, letter by letter, to the
    # closest question the sets asked of each document (asked_letters, asked_none). The blind
    # sets together (1,724 replies): in 66.9 -> 75.7%, unknown 95.8 -> 95.2%, mixed 70.7 ->
    # 73.3%, off 97.8 -> 97.8%, wrong answers 12 -> 15 (0.70 -> 0.87%); holdout10 in 65.3 ->
    # 80.7%, wrong 4 -> 3. "in" rose on every set. It cost an unknown question on holdout5 (49
    # -> 48 of 50) and holdout6 (50 -> 49), a mixed one on train10 (27 -> 26 of 40), and wrong
    # answers on holdout4 (0 -> 1 of 245), holdout6 (2 -> 4 of 260) and train6 (1 -> 3 of 429):
    # those floors follow. The sets fitted on now answer 87-99% (their own questions are among
    # the asked ones).
    # Session 9: the models fitted on nine question sets (train7, train9-11 added), a document
    # the entry model never saw deciding without the answerable reading too (missing values
    # in the trees). The blind sets together (1,724 replies): in 68.5 -> 66.9%, unknown 93.1
    # -> 95.8%, mixed 65.3 -> 70.7%, off 95.6 -> 97.8%, wrong answers 25 -> 12 (1.45 ->
    # 0.70%). It cost answered questions on holdout5 (97 -> 95 of 145), holdout7 (110 -> 100
    # of 150), holdout8 (102 -> 99 of 153), holdout9 (95 -> 94 of 154) and train5 (182 -> 180
    # of 244, mixed 29 -> 27 of 41, wrong 2 -> 4 of 428): those floors follow. Every other
    # floor rose or stayed.
    # Session 7: the entry model (which document a question asks for, learned from the
    # questions each was asked in) and the wrong-answer target at 1% for 1.5%. Against the
    # session's start, "in" rose on every set (blind: holdout2 70.0 -> 75.6, holdout4 56.3 ->
    # 66.7, holdout5 62.1 -> 66.9, holdout6 64.8 -> 71.7, holdout7 64.7 -> 73.3, holdout8 55.6
    # -> 66.7; train7 60.9 -> 68.3), wrong fell on train7 (3.0 -> 2.5%). It cost one more wrong
    # answer on holdout2 (1.3 -> 2.0%) and on holdout8 (0.4 -> 0.7%), and a mixed question on
    # train7 (68.6 -> 65.7): those floors follow.
    # Session 6: the sets' facts matched whatever their case, and the models refitted on the
    # labels that follows (train5 gained right answers it had been denied). Against the
    # session's start, "in" rose on every blind set (holdout2 66.7 -> 70.0, holdout4 51.9 ->
    # 56.3, holdout5 60.7 -> 62.1, holdout6 60.0 -> 64.8, holdout7 62.7 -> 64.0) and on the
    # fitted-on sets; the wrong share fell on holdout4 (0.4 -> 0.0) and holdout7 (1.9 -> 1.5).
    # It cost one unknown question on holdout5 (98 -> 96, now pointed away) and one more
    # wrong answer on train6 (0.7 -> 0.9%): those two floors follow. Fitting on train7 as well
    # measured worse on the blind sets (holdout2 unknown 93.3 -> 90.0 and off 93.3 -> 90.0,
    # wrong 1.3 -> 2.7%; holdout4 unknown 88 -> 80): train7 is measured, not fitted on.
    "questions.yaml": ({"in": 0.977, "unknown": 1.0, "off": 1.0}, 0.001),
    "holdout.yaml": ({"in": 0.99, "unknown": 1.0, "off": 1.0}, 0.001),
    "holdout3.yaml": ({"in": 0.975, "unknown": 1.0, "off": 1.0}, 0.001),
    "train5.yaml": ({"in": 0.918, "unknown": 1.0, "mixed": 0.804, "off": 1.0}, 0.003),
    "train6.yaml": ({"in": 0.931, "unknown": 1.0, "mixed": 0.725, "off": 1.0}, 0.005),
    "train7.yaml": ({"in": 0.952, "unknown": 1.0, "mixed": 0.857, "off": 1.0}, 0.01),
    "holdout2.yaml": ({"in": 0.922, "unknown": 0.966, "off": 0.966}, 0.001),
    "holdout4.yaml": ({"in": 0.881, "unknown": 0.96, "mixed": 0.85, "off": 0.975}, 0.001),
    "holdout5.yaml": ({"in": 0.889, "unknown": 0.98, "mixed": 0.6, "off": 0.975}, 0.02),
    "holdout6.yaml": ({"in": 0.951, "unknown": 0.98, "mixed": 0.84, "off": 1.0}, 0.008),
    "holdout7.yaml": ({"in": 0.92, "unknown": 0.96, "mixed": 0.8, "off": 1.0}, 0.004),
    # Session 7: written blind; its first run (67e25ab) was the floor.
    "holdout8.yaml": ({"in": 0.941, "unknown": 0.96, "mixed": 0.88, "off": 1.0}, 0.004),
    # Session 8: written blind; its first run (0e14833) was the floor.
    "holdout9.yaml": ({"in": 0.889, "unknown": 0.98, "mixed": 0.733, "off": 0.925}, 0.008),
    # Session 9: written blind; its first run (462de13) was the floor.
    "holdout10.yaml": ({"in": 0.893, "unknown": 0.96, "mixed": 0.88, "off": 1.0}, 0.016),
    # Session 10: written blind after the asked questions landed; its first run (322ab34) is
    # the floor.
    "holdout11.yaml": ({"in": 0.96, "unknown": 0.98, "mixed": 0.76, "off": 1.0}, 0.008),
    # Session 11: written blind; its first run (6f117b5) is the floor, and measured the same
    # after the counters (00b3907).
    "holdout12.yaml": ({"in": 0.846, "unknown": 0.96, "mixed": 0.72, "off": 1.0}, 0.008),
    # Session 8: written from the sources to fit on.
    "train9.yaml": ({"in": 0.969, "unknown": 0.987, "mixed": 0.825, "off": 1.0}, 0.005),
    "train10.yaml": ({"in": 0.977, "unknown": 0.985, "mixed": 0.725, "off": 1.0}, 0.007),
    "train11.yaml": ({"in": 0.957, "unknown": 1.0, "mixed": 0.78, "off": 1.0}, 0.012),
    # Session 11: written from the sources to fit on, measured and not yet fitted: the refit
    # with them (and the right labels for English questions) answered 12 more of the blind
    # sets' 1,422 answerable questions than the models served (and 3 more unknown, 5 more
    # mixed), but with 25 wrong answers of 2,504 for 22 and one more off-topic one answered
    # or queued: a wrong answer is worse than a decline. First runs (6f117b5): train12 70.9 /
    # 90.8 / 80.0 / 100, wrong 2.0%; train13 79.4 / 86.2 / 63.3 / 96.7, wrong 2.3%. Their
    # failures have been read.
    "train12.yaml": ({"in": 0.942, "unknown": 1.0, "mixed": 0.833, "off": 1.0}, 0.001),
    "train13.yaml": ({"in": 0.971, "unknown": 1.0, "mixed": 0.8, "off": 1.0}, 0.004),
    "train14.yaml": ({"in": 0.964, "unknown": 1.0, "mixed": 0.833, "off": 1.0}, 0.001),
    "train15.yaml": ({"in": 0.958, "unknown": 0.983, "mixed": 0.8, "off": 1.0}, 0.004),
    "train16.yaml": ({"in": 0.959, "unknown": 1.0, "mixed": 0.9, "off": 1.0}, 0.004),
    "train17.yaml": ({"in": 0.965, "unknown": 0.984, "mixed": 0.9, "off": 1.0}, 0.004),
    "train18.yaml": ({"in": 0.913, "unknown": 0.984, "mixed": 0.9, "off": 1.0}, 0.011),
    "train19.yaml": ({"in": 0.948, "unknown": 0.984, "mixed": 0.8, "off": 1.0}, 0.004),
    # Session 14: written blind from the sources by helpers that saw only the seed press
    # release and facts.md (a question identical to one of an earlier set left out), measured
    # once on a27f304: holdout13 is kept unseen (totals only); train20-23 are written to fit on,
    # measured, not yet fitted (fitted on, the blind sets moved within noise: 1,212 for 1,206
    # of the older sets' 1,422, 114 for 116 of holdout13's 141, at a threshold of 0.900).
    # Their floors are their first runs.
    "holdout13.yaml": ({"in": 0.879, "unknown": 1.0, "mixed": 0.84, "off": 0.967}, 0.005),
    "train20.yaml": ({"in": 0.953, "unknown": 0.983, "mixed": 0.866, "off": 1.0}, 0.007),
    "train21.yaml": ({"in": 0.929, "unknown": 1.0, "mixed": 0.866, "off": 1.0}, 0.011),
    "train22.yaml": ({"in": 0.958, "unknown": 1.0, "mixed": 0.793, "off": 1.0}, 0.004),
    "train23.yaml": ({"in": 0.905, "unknown": 1.0, "mixed": 0.833, "off": 1.0}, 0.004),
    # Session 16: written the same way (a question identical to one of an earlier set left
    # out) and run once on 8d495e3: holdout14 is kept unseen, its first run 81.8 / 97.8 /
    # 76.9 / 96.3, 3 wrong of 231; train24 (the asker's own words) 63.4 / 95.9 / 50.0 / 90.0,
    # 1 wrong of 272; train25 (fragments, typos, long messages) 79.4 / 96.4 / 46.4 / 94.4,
    # 5 wrong of 261. train24 and train25 are fitted on.
    "holdout14.yaml": ({"in": 0.871, "unknown": 0.956, "mixed": 0.923, "off": 1.0}, 0.026),
    "train24.yaml": ({"in": 0.937, "unknown": 1.0, "mixed": 0.714, "off": 1.0}, 0.004),
    "train25.yaml": ({"in": 0.937, "unknown": 0.981, "mixed": 0.571, "off": 1.0}, 0.008),
    # Session 16, second step: written the same way, run once on the models of 17888d3 (with
    # the check fix) and fitted on: train26 (English, mixed Korean and English) 72.1 / 96.3 /
    # 60.7 / 94.4, 5 wrong of 265; train27 (half-remembered figures, formal requests) 65.9 /
    # 93.2 / 53.6 / 77.3, 6 wrong of 279; train28 (two questions in one) 81.7 / 96.6 / 50.0 /
    # 100, 4 wrong of 268; train29 (chat style, long situations) 86.6 / 90.9 / 44.4 / 94.7,
    # 10 wrong of 258.
    # Session 18: written blind the same way (206 after 26 questions identical to an earlier
    # set's were left out) and run once on fcb60a3: kept unseen, its first run is the floor:
    # 91.1 / 100 / 68.0 / 100, 1 wrong of 206 (mecab 83.9 / 100 / 52.0 / 100, 2 wrong;
    # whitespace 24.2 / 94.9 / 20.0 / 100, 0 wrong).
    "holdout15.yaml": ({"in": 0.911, "unknown": 1.0, "mixed": 0.76, "off": 1.0}, 0.005),
    "train26.yaml": ({"in": 0.945, "unknown": 0.981, "mixed": 0.642, "off": 1.0}, 0.012),
    "train27.yaml": ({"in": 0.929, "unknown": 0.983, "mixed": 0.821, "off": 1.0}, 0.004),
    "train28.yaml": ({"in": 0.888, "unknown": 0.966, "mixed": 0.625, "off": 1.0}, 0.012),
    "train29.yaml": ({"in": 0.968, "unknown": 1.0, "mixed": 0.666, "off": 1.0}, 0.004),
    "chatbot-2000.yaml": ({"off": 0.999}, 0.0005),
}
BLIND = {path.name for path in blind_sets(EVAL)}
# Three documents an admin might upload, and questions about them (tests/eval/uploads/),
# written blind in session 10: kept unseen, and its first run (197007b) is the floor. A
# document the entry model never saw is decided from its words alone, and questions about
# an uploaded passage in other words than its own are mostly declined.
UPLOADS = EVAL / "uploads"
# Session 14 (fifteen sets): 6 -> 5 of 60 answered, 28 of 30 declined, wrong 1 -> 2 of 90.
# Session 15 (passages taught as new, fit.passages_as_new): 5 -> 9 of 60, 28 of 30, wrong 2.
# Session 16 (twenty-three sets): 9 -> 11 of 60, 28 -> 29 of 30, wrong 2; twenty-seven sets
# and the predication split: 11 -> 9 of 60, 29 -> 28 of 30, wrong 2; with the topic missing
# for an untaught document: 9 -> 5 of 60 (of the other 55, 51 declined and queued and 3
# pointed away: their topic reading had been a help), 28 of 30, wrong 2.
UPLOAD_FLOORS = ({"in": 0.083, "unknown": 0.933}, 0.023)


def test_project_question_set_is_large_enough_to_mean_something() -> None:
    items = load_questions(QUESTIONS)
    assert len(items) >= 150
    assert sum(i.kind in ("unknown", "off") for i in items) >= 40
    assert len(load_questions(EVAL / "holdout4.yaml")) >= 200


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_accuracy_per_kind_stays_above_the_floor(name: str, real_index: KnowledgeIndex) -> None:
    report = evaluate(load_questions(EVAL / name), real_index)
    _assert_at_floor(report, FLOORS[name], blind=name in BLIND)


def _assert_at_floor(report: EvalReport, floors: tuple[dict[str, float], float],
                     blind: bool) -> None:
    """Each kind at its floor and the wrong answers under their share; a blind set's failures
    are not shown."""
    at_least, most_wrong = floors
    shown = format_report(report, show_failures=not blind)
    below = {k: report.accuracy(k) for k, floor in at_least.items() if report.accuracy(k) < floor}
    assert not below, shown
    # A share, not the list: pytest would print the blind sets' questions.
    wrong = len(report.confidently_wrong) / len(report.verdicts)
    assert wrong <= most_wrong, shown


def test_questions_about_uploaded_documents_stay_above_the_floor(tmp_path: Path) -> None:
    root = Path(shutil.copytree(KNOWLEDGE, tmp_path / "knowledge"))
    for document in sorted((UPLOADS / "policy").glob("*.md")):
        shutil.copy(document, root / "policy" / document.name)
    index = load_index(root)
    assert len(index.knowledge.passages) > 30
    report = evaluate(load_questions(UPLOADS / "questions.yaml"), index)
    _assert_at_floor(report, UPLOAD_FLOORS, blind=True)


def test_a_fact_counts_only_in_what_the_reply_gives_as_the_answer(
        real_index: KnowledgeIndex) -> None:
    """The reply about briefings cites the press release of 2025.12.04 and suggests related
    questions; neither answers "간담회 언제였어?": a fact asked for must be in the answer."""
    entry = next(e for e in real_index.knowledge.entries if e.id == "contact-briefings")
    served = answer_entry(entry, real_index)
    reply = to_plain_text(render_answer(served, real_index.knowledge))
    said = said_text(served)
    assert "2025.12.04" in reply and served.suggestions
    asked_date = EvalQuestion("in", "간담회 언제였어?", must=(r"2025\.12\.04|12\s*월\s*4\s*일",))
    assert judge(asked_date, served, reply, said) is not None
    related = re.escape(served.suggestions[0].question)
    suggested = EvalQuestion("in", "관련 질문 뭐 있어?", must=(related,))
    assert judge(suggested, served, reply, said) is not None
    asked_events = EvalQuestion("in", "설명회 열려요?", must=("설명회",))
    assert judge(asked_events, served, reply, said) is None


@pytest.mark.parametrize("question", ["국민연금 수익률 얼마야", "펀드 수익률 좋은 상품 추천",
                                      "성장호르몬 주사 효과", "삼성전자 주가 얼마야"])
def test_lexical_traps_are_neither_answered_nor_queued(question: str,
                                                       real_index: KnowledgeIndex) -> None:
    assert answer(question, real_index).status == "off_topic"


@pytest.mark.parametrize("question", ["국성펀드 규모", "국민 성장 펀드 규모",
                                      "국민성장펀드규모얼마에요", "국민성장펀듣 규모",
                                      "NGF 규모는?"])
def test_aliases_spacing_and_typos_reach_the_same_entry(question: str,
                                                        real_index: KnowledgeIndex) -> None:
    result = answer(question, real_index)
    assert result.status == "answered"
    assert "150조" in result.document.answer


@pytest.mark.parametrize("question", ["지방기업에도 투자하나요?", "지방 기업에도 투자하나요?"])
def test_an_alias_run_into_the_next_word_still_counts(question: str,
                                                      real_index: KnowledgeIndex) -> None:
    """지방 is 지역's alias; written without a space before 기업 it is still found."""
    result = answer(question, real_index)
    assert result.status == "answered"
    assert result.document.id == "industries-regional"


def test_english_questions_get_english_replies(real_index: KnowledgeIndex) -> None:
    result = answer("How big is the National Growth Fund?", real_index)
    reply = to_plain_text(render_answer(result, real_index.knowledge))
    assert result.status == "answered" and result.language == "en"
    assert "150 trillion" in reply and "Source:" in reply
    assert "\nInformation as of 20" in reply and ".." not in reply


def test_unanswerable_questions_are_declined_with_at_most_three_suggestions(
        real_index: KnowledgeIndex) -> None:
    result = answer("초저리 대출 금리는 몇 퍼센트인가요?", real_index)
    assert result.status == "unanswered" and result.followup
    assert len(result.suggestions) <= 3
    reply = to_plain_text(render_answer(result, real_index.knowledge))
    assert "확인된 답변이 없습니다" in reply


def test_answering_is_a_pure_function_of_question_and_index(tmp_path: Path) -> None:
    """Two processes with different hash seeds (a set's order follows it) give the same
    replies, probabilities and signals to every question of a set."""
    outputs = []
    for seed in ("1", "2"):
        run = subprocess.run(
            [sys.executable, "-m", "bot.cli", "ask", "--json", "-"],
            input="\n".join(i.question for i in load_questions(EVAL / "holdout3.yaml")),
            capture_output=True, text=True, timeout=300, cwd=PROJECT,
            env={**os.environ, "PYTHONHASHSEED": seed, "KNOWLEDGE_DIR": str(KNOWLEDGE)})
        assert run.returncode == 0, run.stderr
        outputs.append(run.stdout)
    assert outputs[0] == outputs[1]
    assert outputs[0].count("\n") == len(load_questions(EVAL / "holdout3.yaml"))


def test_questions_answered_together_get_the_answers_they_get_alone(
        real_index: KnowledgeIndex) -> None:
    """Under load the bot answers waiting questions as a batch; nobody's answer may change."""
    questions = [item.question for path in (QUESTIONS, QUESTIONS.with_name("holdout.yaml"))
                 for item in load_questions(path)]
    together = answer_many(questions, real_index)
    alone = [answer(q, real_index) for q in questions]
    assert [(a.status, a.document, a.hit and a.hit.score, a.query.terms) for a in together] == [
        (a.status, a.document, a.hit and a.hit.score, a.query.terms) for a in alone]
    assert sum("인데" in q or "는데" in q for q in questions) >= 5, "with situation clauses"


def test_postings_give_the_same_scores_as_rank_bm25(real_index: KnowledgeIndex) -> None:
    for question in ["국민성장펀드 규모", "휴머노이드 투자수요", "대출 금리", "AI 반도체"]:
        terms = real_index.parse(question).terms
        assert np.allclose(real_index.scores(terms), real_index.bm25.get_scores(list(terms)))


@pytest.mark.parametrize("question", ["국민성장펀드 전략위원회는 얼마나 자주 열리나요?",
                                      "초저리 대출은 기업당 얼마까지 받을 수 있나요?"])
def test_a_schedule_or_a_per_company_figure_is_not_answered_with_another_fact(
        question: str, real_index: KnowledgeIndex) -> None:
    assert answer(question, real_index).status == "unanswered"


def test_every_glossary_term_stays_whole_in_the_kiwi_analyzer(real_index: KnowledgeIndex) -> None:
    """No stopword, particle rule or split may swallow a term the glossary keeps whole."""
    from index.analyzer import user_words

    analyzer = real_index.analyzer
    broken = {}
    for word in user_words(real_index.knowledge.glossary):
        for text in (word, f"{word}는 뭐예요", f"{word}에 대해", f"{word}의 규모"):
            if word.casefold() not in analyzer.tokens(text):
                broken[text] = analyzer.tokens(text)
    assert not broken

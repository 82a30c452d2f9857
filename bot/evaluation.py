"""Measure answer quality on a question file (the format of tests/eval/questions.yaml).

Each question has a kind: `in` must be answered and its reply must match every `must` regex;
`unknown` must be declined and queued for the secretariat with no `must_not` regex matching the
reply (no invented figure); `mixed` holds two questions, one answerable and one not: the reply
must carry the `must` facts and the question must be queued too; `off` must get neither an
answer nor a follow-up.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bot.answering import DEFAULT_RULES, Answer, AnsweringRules, answer
from bot.replies import render_answer, said_text, to_plain_text
from index import KnowledgeIndex

KINDS = ("in", "unknown", "mixed", "off")


@dataclass(frozen=True)
class EvalQuestion:
    kind: str
    question: str
    must: tuple[str, ...] = ()
    must_not: tuple[str, ...] = ()


@dataclass(frozen=True)
class Verdict:
    item: EvalQuestion
    answer: Answer
    reply: str
    problem: str | None
    # What the reply gives as the answer (said_text): the facts asked for must be in it.
    said: str = ""

    @property
    def correct(self) -> bool:
        return self.problem is None


@dataclass
class EvalReport:
    verdicts: list[Verdict] = field(default_factory=list)

    def counts(self, kind: str) -> tuple[int, int]:
        mine = [v for v in self.verdicts if v.item.kind == kind]
        return sum(v.correct for v in mine), len(mine)

    def accuracy(self, kind: str) -> float:
        correct, total = self.counts(kind)
        return correct / total if total else 1.0

    @property
    def confidently_wrong(self) -> list[Verdict]:
        """Replies that served an FAQ answer which is not the right one: worse than a decline.

        A reply to several questions that answers some and says the rest went to the
        secretariat is incomplete, not wrong, when what it answers is one of the facts asked
        for (it matches a `must`)."""
        return [v for v in self.verdicts if v.answer.status == "answered" and not v.correct
                and not (v.item.kind == "mixed" and not v.answer.followup
                         and not [p for p in v.item.must if not holds(p, v.said)])
                and not (v.answer.parts and v.answer.followup
                         and any(holds(p, v.said) for p in v.item.must))]

    @property
    def failures(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.correct]


def holds(pattern: str, reply: str) -> bool:
    """Does the reply state what the pattern describes? Case does not change a fact: a set's
    `Manufacturing AI Transformation` is the answer's `manufacturing AI transformation`."""
    return re.search(pattern, reply, re.IGNORECASE) is not None


def load_questions(path: Path | str) -> list[EvalQuestion]:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of questions")
    items = []
    for number, node in enumerate(data, start=1):
        kind = str(node.get("kind"))
        if kind not in KINDS or not node.get("q"):
            raise ValueError(f"{path}: item {number} needs kind ({'|'.join(KINDS)}) and q")
        items.append(EvalQuestion(kind, str(node["q"]), tuple(node.get("must") or ()),
                                  tuple(node.get("must_not") or ())))
    return items


def judge(item: EvalQuestion, result: Answer, reply: str, said: str) -> str | None:
    """Why the reply is wrong for this item, or None when it is right: the facts asked for
    must be in what it gives as the answer (`said`), and no invented one anywhere in it."""
    if item.kind == "in":
        if result.status != "answered":
            return f"expected an answer, got {result.status}"
        missing = [p for p in item.must if not holds(p, said)]
        return f"answer lacks {missing}" if missing else None
    if item.kind == "mixed":
        missing = [p for p in item.must if not holds(p, said)]
        if missing or not result.followup:
            return (f"answer lacks {missing}" if missing else "") + (
                "" if result.followup else f" not queued ({result.status})")
        invented = [p for p in item.must_not if holds(p, reply)]
        return f"reply matches forbidden {invented}" if invented else None
    if item.kind == "unknown":
        if result.status != "unanswered":
            return f"expected a follow-up, got {result.status}"
        invented = [p for p in item.must_not if holds(p, reply)]
        return f"reply matches forbidden {invented}" if invented else None
    if result.status not in ("off_topic", "smalltalk"):
        return f"expected a pointer, got {result.status}"
    return None


def evaluate(items: list[EvalQuestion], index: KnowledgeIndex,
             rules: AnsweringRules = DEFAULT_RULES) -> EvalReport:
    report = EvalReport()
    for item in items:
        result = answer(item.question, index, rules)
        reply = to_plain_text(render_answer(result, index.knowledge))
        said = said_text(result)
        report.verdicts.append(Verdict(item, result, reply, judge(item, result, reply, said),
                                       said))
    return report


def format_report(report: EvalReport, show_failures: bool = True) -> str:
    lines = []
    if show_failures and report.failures:
        lines.append("Failures:")
        for v in report.failures:
            doc = v.answer.document
            matched = f" [{doc.id} {v.answer.hit.coverage:.2f}]" if doc and v.answer.hit else ""
            lines.append(f"  ({v.item.kind}) {v.item.question} -> {v.problem}{matched}")
        lines.append("")
    by_kind = Counter(v.item.kind for v in report.verdicts)
    for kind in KINDS:
        if by_kind[kind]:
            correct, total = report.counts(kind)
            lines.append(f"{kind:8} {correct:4}/{total:<4} {100 * correct / total:5.1f}%")
    total_correct = sum(v.correct for v in report.verdicts)
    lines.append(f"{'all':8} {total_correct:4}/{len(report.verdicts):<4} "
                 f"{100 * total_correct / max(1, len(report.verdicts)):5.1f}%")
    wrong = len(report.confidently_wrong)
    lines.append(f"{'wrong':8} {wrong:4}/{len(report.verdicts):<4} "
                 f"{100 * wrong / max(1, len(report.verdicts)):5.1f}%  "
                 "(answered with a wrong fact)")
    return "\n".join(lines)

"""The guided eligibility check as data: steps, options, and rules from answers to methods.

`knowledge/eligibility.yaml` holds every step, option and rule (bot/eligibility/loading.py
reads and validates it); this module evaluates a set of answers against them. Pure: no files,
no Telegram. Nothing here knows which answer leads where. Every text comes in Korean with its
English twin (`label_en`, ...); `in_language` gives the rules as a user of a language reads them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

# Keys travel in Telegram button data ("ck:a:<step>:<option>", 64 bytes at most).
KEY = re.compile(r"^[a-z0-9][a-z0-9-]{0,19}$")
# Matches a step that was skipped or not asked.
SKIPPED = "skipped"
LABEL_CHARS = 40


@dataclass(frozen=True)
class Option:
    key: str
    label: str
    label_en: str | None = None


@dataclass(frozen=True)
class Step:
    key: str
    label: str
    question: str
    options: tuple[Option, ...]
    hint: str | None = None
    # Asked only when every listed step's answer is one of the listed options.
    ask_if: tuple[tuple[str, tuple[str, ...]], ...] = ()
    line: int = 1
    label_en: str | None = None
    question_en: str | None = None
    hint_en: str | None = None

    def option(self, key: str | None) -> Option | None:
        return next((o for o in self.options if o.key == key), None)


@dataclass(frozen=True)
class Method:
    key: str
    label: str
    entries: tuple[str, ...]
    line: int = 1
    label_en: str | None = None


@dataclass(frozen=True)
class Rule:
    """When every condition holds, `methods` fit for `reason`, backed by `entries`."""

    when: tuple[tuple[str, tuple[str, ...]], ...]
    methods: tuple[str, ...]
    reason: str
    entries: tuple[str, ...]
    line: int = 1
    reason_en: str | None = None

    def applies(self, answers: Mapping[str, str | None]) -> bool:
        return _holds(self.when, answers)


@dataclass(frozen=True)
class OpenQuestion:
    """Something the sources do not settle yet, shown when its conditions hold."""

    text: str
    when: tuple[tuple[str, tuple[str, ...]], ...] = ()
    methods: tuple[str, ...] = ()
    entries: tuple[str, ...] = ()
    line: int = 1
    text_en: str | None = None


@dataclass(frozen=True)
class Fit:
    """Methods that fit, and why: one group per set of methods the matching rules named."""

    methods: tuple[Method, ...]
    reasons: tuple[str, ...]
    entries: tuple[str, ...]


@dataclass(frozen=True)
class Note:
    reason: str
    entries: tuple[str, ...]


@dataclass(frozen=True)
class Outcome:
    fits: tuple[Fit, ...]
    notes: tuple[Note, ...]
    open_questions: tuple[OpenQuestion, ...]
    fallback: bool

    @property
    def methods(self) -> tuple[Method, ...]:
        seen: dict[str, Method] = {}
        for fit in self.fits:
            for method in fit.methods:
                seen.setdefault(method.key, method)
        return tuple(seen.values())

    @property
    def entries(self) -> tuple[str, ...]:
        """Every FAQ entry behind the result, in the order shown, once each."""
        ids = [i for fit in self.fits for i in fit.entries]
        ids += [i for note in self.notes for i in note.entries]
        ids += [i for q in self.open_questions for i in q.entries]
        return tuple(dict.fromkeys(ids))


@dataclass(frozen=True)
class EligibilityRules:
    path: Path
    steps: tuple[Step, ...]
    methods: dict[str, Method]
    rules: tuple[Rule, ...]
    fallback: Rule | None
    open_questions: tuple[OpenQuestion, ...]
    offer_check_for: tuple[str, ...] = ()
    never_say: tuple[str, ...] = field(default=())

    def in_language(self, language: str) -> EligibilityRules:
        """The rules with every text in `language`: the English twins for "en", else as
        written (Korean). Keys, conditions and entries stay, so answers carry over."""
        if language != "en":
            return self

        def step(s: Step) -> Step:
            return replace(s, label=s.label_en or s.label, question=s.question_en or s.question,
                           hint=s.hint_en or s.hint,
                           options=tuple(replace(o, label=o.label_en or o.label)
                                         for o in s.options))

        def rule(r: Rule) -> Rule:
            return replace(r, reason=r.reason_en or r.reason)

        return replace(
            self, steps=tuple(step(s) for s in self.steps),
            methods={k: replace(m, label=m.label_en or m.label) for k, m in self.methods.items()},
            rules=tuple(rule(r) for r in self.rules),
            fallback=rule(self.fallback) if self.fallback else None,
            open_questions=tuple(replace(q, text=q.text_en or q.text)
                                 for q in self.open_questions))

    def step(self, key: str | None) -> Step | None:
        return next((s for s in self.steps if s.key == key), None)

    def asked(self, step: Step, answers: Mapping[str, str | None]) -> bool:
        """Whether `step` is asked given the answers so far."""
        return _holds(step.ask_if, answers)

    def next_step(self, answers: Mapping[str, str | None]) -> Step | None:
        """The first step not answered (or skipped) yet that is asked; None when done."""
        for step in self.steps:
            if step.key not in answers and self.asked(step, answers):
                return step
        return None

    def position(self, step: Step, answers: Mapping[str, str | None]) -> tuple[int, int]:
        """(number of this step, steps in all) as far as the answers so far tell."""
        shown = [s for s in self.steps if s.key in answers or s is step
                 or all(k not in answers or (answers[k] or SKIPPED) in allowed
                        for k, allowed in s.ask_if)]
        return shown.index(step) + 1, len(shown)

    def evaluate(self, answers: Mapping[str, str | None]) -> Outcome:
        """Apply every rule to the answers (step key -> option key, None when skipped)."""
        answers = {k: v for k, v in answers.items() if self._valid(k, v)}
        matched = [r for r in self.rules if r.applies(answers)]
        with_methods = [r for r in matched if r.methods]
        fallback = not with_methods and self.fallback is not None
        if fallback:
            with_methods = [self.fallback]
        groups: dict[tuple[str, ...], list[Rule]] = {}
        for rule in with_methods:
            groups.setdefault(rule.methods, []).append(rule)
        fits = tuple(
            Fit(tuple(self.methods[m] for m in keys),
                tuple(r.reason for r in rules),
                tuple(dict.fromkeys(i for r in rules for i in r.entries)))
            for keys, rules in groups.items())
        fitting = {m for keys in groups for m in keys}
        notes = tuple(Note(r.reason, r.entries) for r in matched if not r.methods)
        questions = tuple(q for q in self.open_questions if _holds(q.when, answers)
                          and (not q.methods or fitting & set(q.methods)))
        return Outcome(fits, notes, questions, fallback)

    def _valid(self, step_key: str, option_key: str | None) -> bool:
        """Answers to steps or options a reload removed are dropped."""
        step = self.step(step_key)
        return step is not None and (option_key is None or step.option(option_key) is not None)


def _holds(conditions: tuple[tuple[str, tuple[str, ...]], ...],
           answers: Mapping[str, str | None]) -> bool:
    return all((answers.get(step) or SKIPPED) in allowed for step, allowed in conditions)

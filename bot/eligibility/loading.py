"""Read and check knowledge/eligibility.yaml: the guided check's steps, methods and rules, its
shape declared as pydantic models and its references checked against each other and the FAQ
entries they cite, every error with its line. Every text has its English twin beside it
(`label` and `label_en`, `reason` and `reason_en`, ...): a missing twin is an error.

bot/knowledge.py reads the rules together with the rest of the knowledge folder, so that
`maxbot check` and /reload list the errors of both at once; `rules_of(knowledge)` gives them.

One module over 400 lines on purpose: the file's shape and the checks of its references read
as one pass over it, every error collected before failing.
"""

from __future__ import annotations

import dataclasses
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BeforeValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from bot.eligibility.rules import (
    KEY,
    LABEL_CHARS,
    SKIPPED,
    EligibilityRules,
    Method,
    OpenQuestion,
    Option,
    Rule,
    Step,
)
from index import KnowledgeBase
from index.reading import (
    KnowledgeError,
    KnowledgeInvalid,
    Lined,
    LineText,
    Loc,
    Names,
    OptionalLineText,
    Shape,
    Strict,
    Texts,
    line_of,
    read_yaml,
    refuse,
    unknown_keys,
    validated,
    without_line,
)

RULES_FILE = "eligibility.yaml"
S = TypeVar("S", bound=Shape)

_rules: dict[int, EligibilityRules | None] = {}
_rules_lock = threading.Lock()


def rules_of(knowledge: KnowledgeBase) -> EligibilityRules | None:
    """The guided check's rules of the knowledge folder, read once per knowledge base (with
    it, by bot/knowledge.py); None when the folder has no eligibility.yaml. Raises
    KnowledgeInvalid when the file is broken."""
    with _rules_lock:
        if id(knowledge) not in _rules:
            errors: list[KnowledgeError] = []
            rules = read_rules(knowledge, errors)
            if errors:
                raise KnowledgeInvalid(errors)
            _remember(knowledge, rules)
        return _rules[id(knowledge)]


def remember_rules(knowledge: KnowledgeBase, rules: EligibilityRules | None) -> None:
    """The rules read together with `knowledge`: what rules_of gives for it."""
    with _rules_lock:
        _remember(knowledge, rules)


def _remember(knowledge: KnowledgeBase, rules: EligibilityRules | None) -> None:
    # By identity (a knowledge base holds dicts: it has no hash); forgotten with it.
    if id(knowledge) not in _rules:
        weakref.finalize(knowledge, _rules.pop, id(knowledge), None)
    _rules[id(knowledge)] = rules


def read_rules(knowledge: KnowledgeBase, errors: list[KnowledgeError]
               ) -> EligibilityRules | None:
    """The rules of the folder `knowledge` was read from, checked against its FAQ entries;
    None without the file. Every problem is added to `errors`."""
    path = knowledge.root / RULES_FILE
    if not path.exists():
        return None
    return load_eligibility(path, {entry.id for entry in knowledge.entries}, errors,
                            knowledge.lost_entries)


# --- the file's shape ------------------------------------------------------------------------


def _key(value: Any) -> str:
    if value is None or not KEY.match(str(value)):
        raise refuse("key {key} must be 1-20 lowercase letters, digits and '-'", key=repr(value))
    if str(value) == SKIPPED:
        raise refuse("key {key} is reserved", key=repr(SKIPPED))
    return str(value)


def _present(value: Any) -> Any:
    if not value:
        raise PydanticCustomError("blank", "is empty")
    return value


def _none_is_empty(value: Any) -> Any:
    return {} if value is None else value


def _conditions(value: Any) -> Any:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise refuse("{field} must map step keys to option keys")
    return without_line(value)


def _short_label(label: str) -> str:
    if len(label) > LABEL_CHARS:
        raise refuse("label is longer than {n} characters (a button shows no more)",
                     n=LABEL_CHARS)
    return label


Key = Annotated[str, BeforeValidator(_key)]
# Which options of which earlier steps: `{step: [option, ...]}`; 'skipped' matches no answer.
Conditions = Annotated[dict[str, Annotated[Names, BeforeValidator(_present)]],
                       BeforeValidator(_conditions), Field(default_factory=dict)]


ShortLabel = Annotated[LineText, AfterValidator(_short_label)]


class OptionShape(Strict):
    key: Key
    label: ShortLabel
    label_en: ShortLabel
    # The option of the step that offers this one's (also_offer) that means the same: this
    # one is then not offered there a second time.
    same_as: Key | None = None


def _offer_spec(value: Any) -> Any:
    if value is not None and not isinstance(value, dict):
        raise refuse("also_offer must be {step: <another step>, before: <its option>}")
    return value


class AlsoOfferShape(Strict):
    """`also_offer: {step: sub-alliance, before: other}`: a step offers another step's
    options too (but those `same_as` one of its own), before its option `before` (else last)."""

    step: Key
    before: Key | None = None


class StepShape(Strict):
    key: Key
    label: LineText
    label_en: LineText
    question: LineText
    question_en: LineText
    hint: OptionalLineText = None
    hint_en: OptionalLineText = None
    ask_if: Conditions  # asked only when these hold
    options: Annotated[tuple[OptionShape, ...], BeforeValidator(_present)]
    also_offer: Annotated[AlsoOfferShape | None, BeforeValidator(_offer_spec)] = None

    @model_validator(mode="after")
    def _options_once(self) -> StepShape:
        keys = [o.key for o in self.options]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise refuse("duplicate option {keys}", keys=", ".join(map(repr, twice)))
        if (self.hint is None) != (self.hint_en is None):
            raise refuse("hint and hint_en (its English twin) go together")
        return self


class MethodShape(Strict):
    label: LineText
    label_en: LineText
    entries: Names = ()


class RuleShape(Strict):
    when: Conditions
    methods: Names = ()
    reason: LineText
    reason_en: LineText
    entries: Annotated[Names, BeforeValidator(_present)]  # the FAQ entries behind its reason


class OpenQuestionShape(Strict):
    text: LineText
    text_en: LineText
    when: Conditions
    methods: Names = ()
    entries: Names = ()


class WordingShape(Shape):
    never_say: Texts = ()


class RulesFileShape(Shape):
    """The file at the top. Each step, method, rule and open question is checked as its own
    shape (above), and a key this does not declare is listed among the other errors, so that
    one mistake does not hide the rest."""

    offer_check_for: Names = ()
    steps: Annotated[tuple[Any, ...], BeforeValidator(_none_is_empty)] = ()
    methods: Annotated[dict[str, Any], Lined, BeforeValidator(_none_is_empty),
                       Field(default_factory=dict)]
    rules: Annotated[tuple[Any, ...], BeforeValidator(_none_is_empty)] = ()
    fallback: Any = None
    open_questions: Annotated[tuple[Any, ...], BeforeValidator(_none_is_empty)] = ()
    wording: Annotated[WordingShape, BeforeValidator(_none_is_empty)] = WordingShape()


REQUIRED = ("steps", "methods", "rules")


def _option_named(step: dict[str, Any]) -> Callable[[Loc], tuple[str, Loc]]:
    """What a place in a step is called in its errors: the step, or one of its options."""
    what = f"step {step.get('key')!r}"

    def describe(loc: Loc) -> tuple[str, Loc]:
        options = step.get("options")
        if (len(loc) > 1 and loc[0] == "options" and isinstance(loc[1], int)
                and isinstance(options, list) and isinstance(options[loc[1]], dict)):
            return f"{what}: option {options[loc[1]].get('key')!r}", loc[2:]
        return what, loc

    return describe


# --- reading it ------------------------------------------------------------------------------


class _Collect:
    """Gathers every error of the cross-checks instead of stopping at the first; knows the FAQ
    entries that a broken FAQ file lost, with the error that lost each."""

    def __init__(self, path: Path, entry_ids: set[str],
                 lost: Mapping[str, KnowledgeError]) -> None:
        self.path = path
        self.entry_ids = entry_ids
        self.lost = lost
        self.errors: list[KnowledgeError] = []
        # The keys of steps and methods whose own errors are listed: a reference to one of
        # them follows from those and is not listed again.
        self.broken: set[str] = set()

    def add(self, line: int | None, message: str,
            follows: KnowledgeError | None = None) -> None:
        self.errors.append(KnowledgeError(self.path, line, message, follows))

    def each(self, model: type[S], nodes: Iterable[Any], what: str, line: int | None,
             named: Callable[[dict[str, Any]], Callable[[Loc], tuple[str, Loc]]] | None = None
             ) -> Iterator[tuple[dict[str, Any], S]]:
        """The nodes that have the model's shape, each with its shape; the errors of the
        others are added."""
        for node in nodes:
            if not isinstance(node, dict):
                self.add(line, f"each {what} must be a mapping")
                continue
            try:
                yield node, validated(model, node, self.path, named(node) if named else what)
            except KnowledgeInvalid as exc:
                self.errors.extend(exc.errors)
                if node.get("key") is not None:
                    self.broken.add(str(node["key"]))


def load_eligibility(path: Path, entry_ids: set[str], errors: list[KnowledgeError],
                     lost: Mapping[str, KnowledgeError] | None = None
                     ) -> EligibilityRules | None:
    """Read and validate the rules file: its shape (RulesFileShape), then its steps, options,
    methods and FAQ entry ids against each other. Every problem is added to `errors` with its
    line, and then None is returned. An id among `lost` (entries of a broken FAQ file) is
    reported as following from the error that lost it."""
    try:
        data = read_yaml(path)
        if not isinstance(data, dict):
            raise KnowledgeError(path, None, "must be a mapping with steps, methods and rules")
        shape = validated(RulesFileShape, data, path, "")
    except KnowledgeError as exc:
        errors.append(exc)
        return None
    except KnowledgeInvalid as exc:
        errors.extend(exc.errors)
        return None
    out = _Collect(path, entry_ids, lost or {})
    unknown = unknown_keys(RulesFileShape, data)
    if unknown:
        out.add(shape.line, unknown)
    for key in REQUIRED:
        if not data.get(key):
            out.add(shape.line, f"has no {key}")
    steps: dict[str, Step] = {}
    offers: dict[str, tuple[dict[str, Any], StepShape]] = {}
    for raw, node in out.each(StepShape, shape.steps, "step", shape.line, _option_named):
        what = f"step {node.key!r}"
        if node.key in steps:
            out.add(node.line, f"duplicate step key {node.key!r}")
            continue
        ask_if = _check_conditions(node.ask_if, steps, out, line_of(raw.get("ask_if")) or node.line,
                                   f"{what}: ask_if", later_hint=True)
        steps[node.key] = Step(node.key, node.label, node.question,
                               tuple(Option(o.key, o.label, o.label_en) for o in node.options),
                               node.hint, ask_if, node.line or 1, node.label_en,
                               node.question_en, node.hint_en)
        offers[node.key] = raw, node
    steps = _offered_from(steps, offers, out)
    methods = {}
    for key, raw in shape.methods.items():
        if not KEY.match(key):
            out.add(line_of(data["methods"]),
                    f"method key {key!r} must be 1-20 lowercase letters, digits and '-'")
            continue
        out.broken.add(key)
        for _, node in out.each(MethodShape, [raw], f"method {key!r}", shape.line):
            out.broken.discard(key)
            entries = _ids(node.entries, out, node.line, f"method {key!r}")
            methods[key] = Method(key, node.label, entries, node.line or 1, node.label_en)
    rules = [_rule(raw, node, steps, methods, out, "rule")
             for raw, node in out.each(RuleShape, shape.rules, "rule", shape.line)]
    fallback = None
    for raw, node in out.each(RuleShape, [shape.fallback] if shape.fallback is not None else [],
                         "fallback", shape.line):
        fallback = _rule(raw, node, steps, methods, out, "fallback")
        if fallback.when or not fallback.methods:
            out.add(fallback.line, "fallback needs methods and no when")
    questions = [OpenQuestion(node.text, *_when_methods_entries(raw, node, steps, methods, out,
                                                                 "open question"),
                              node.line or 1, node.text_en)
                 for raw, node in out.each(OpenQuestionShape, shape.open_questions, "open question",
                                      shape.line)]
    offer = _ids(shape.offer_check_for, out, shape.line, "offer_check_for")
    never_say = shape.wording.never_say
    _check_wording(never_say, list(steps.values()), methods,
                   [*rules, *([fallback] if fallback else [])], questions, out)
    if out.errors:
        errors.extend(out.errors)
        return None
    return EligibilityRules(path, tuple(steps.values()), methods, tuple(rules), fallback,
                            tuple(questions), offer, never_say)


def _offered_from(steps: dict[str, Step], shapes: dict[str, tuple[dict[str, Any], StepShape]],
                  out: _Collect) -> dict[str, Step]:
    """Steps that also offer another step's options (`also_offer: {step: sub-alliance, before:
    other}`): the field of business lists the alliance's fields, except those an option of the
    other step says are the `same_as` one of its own. One list of fields, kept in one place."""
    offered = dict(steps)
    for key, (raw, node) in shapes.items():
        spec = node.also_offer
        if spec is None or key not in steps:
            continue
        step = steps[key]
        line = line_of(raw.get("also_offer")) or step.line
        source = steps.get(spec.step)
        if source is None or source.key == step.key:
            if spec.step not in out.broken:  # else it follows from that step's own errors
                out.add(line, f"step {step.key!r}: also_offer names {spec.step!r}, which is "
                        "not another step")
            continue
        own = {o.key for o in step.options}
        links = {o.key: o.same_as for o in shapes[source.key][1].options}
        for option in shapes[source.key][1].options:
            if option.same_as is not None and option.same_as not in own:
                out.add(option.line or source.line,
                        f"step {source.key!r}: option {option.key!r} is same_as "
                        f"{option.same_as!r}, which step {step.key!r} does not offer")
        extra = [o for o in source.options if links.get(o.key) is None and o.key not in own]
        if spec.before is not None and spec.before not in own:
            out.add(line, f"step {step.key!r}: also_offer before {spec.before!r}, which is not "
                    "one of its options")
        cut = next((i for i, o in enumerate(step.options) if o.key == spec.before),
                   len(step.options))
        offered[key] = dataclasses.replace(
            step, options=(*step.options[:cut], *extra, *step.options[cut:]))
    return offered


def _check_conditions(conditions: dict[str, tuple[str, ...]], steps: dict[str, Step],
                      out: _Collect, line: int | None, what: str, later_hint: bool = False
                      ) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The conditions whose steps and options exist (of the steps so far)."""
    checked = []
    for step_key, keys in conditions.items():
        step = steps.get(step_key)
        if step is None and step_key in out.broken:
            continue  # follows from the step's own errors
        if step is None:
            where = " before this step" if later_hint else ""
            known = ", ".join(steps) or "none"
            out.add(line, f"{what}: unknown step {step_key!r}{where} (steps: {known})")
            continue
        unknown = [k for k in keys if k != SKIPPED and step.option(k) is None]
        if unknown:
            known = ", ".join(o.key for o in step.options)
            out.add(line, f"{what}: unknown option {', '.join(map(repr, unknown))} of step "
                    f"{step_key!r} (options: {known}, {SKIPPED})")
            continue
        checked.append((step.key, keys))
    return tuple(checked)


def _ids(ids: tuple[str, ...], out: _Collect, line: int | None, what: str) -> tuple[str, ...]:
    """The FAQ entry ids that exist. An id the FAQ files lost to an error is unknown because
    of it: reported as following from that error, apart from ids that are unknown here (a
    typo in this file)."""
    by_cause: dict[int, tuple[KnowledgeError | None, list[str]]] = {}
    for unknown in (i for i in ids if i not in out.entry_ids):
        cause = out.lost.get(unknown)
        by_cause.setdefault(id(cause), (cause, []))[1].append(unknown)
    for cause, unknown in by_cause.values():
        out.add(line, f"{what}: unknown FAQ entry {', '.join(map(repr, unknown))}", cause)
    return tuple(i for i in ids if i in out.entry_ids)


def _when_methods_entries(raw: dict[str, Any], node: RuleShape | OpenQuestionShape,
                          steps: dict[str, Step], methods: dict[str, Method], out: _Collect,
                          what: str) -> tuple[tuple[tuple[str, tuple[str, ...]], ...],
                                              tuple[str, ...], tuple[str, ...]]:
    when = _check_conditions(node.when, steps, out, line_of(raw.get("when")) or node.line,
                             f"{what}: when")
    unknown = [m for m in node.methods if m not in methods and m not in out.broken]
    if unknown:
        out.add(node.line, f"{what}: unknown method {', '.join(map(repr, unknown))} "
                f"(methods: {', '.join(methods) or 'none'})")
    known = tuple(m for m in node.methods if m in methods)
    return when, known, _ids(node.entries, out, node.line, what)


def _rule(raw: dict[str, Any], node: RuleShape, steps: dict[str, Step],
          methods: dict[str, Method], out: _Collect, what: str) -> Rule:
    when, known, entries = _when_methods_entries(raw, node, steps, methods, out, what)
    return Rule(when, known, node.reason, entries, node.line or 1, node.reason_en)


def _check_wording(never_say: tuple[str, ...], steps: list[Step], methods: dict[str, Method],
                   rules: list[Rule], questions: list[OpenQuestion], out: _Collect) -> None:
    """No text, in either language, may promise what wording.never_say lists."""
    if not never_say:
        return
    texts: list[tuple[int | None, str, str | None]] = []
    for step in steps:
        texts += [(step.line, f"step {step.key!r}", t) for t in (step.question, step.question_en,
                                                                 step.hint, step.hint_en)]
        texts += [(step.line, f"step {step.key!r}", t) for o in step.options
                  for t in (o.label, o.label_en)]
    texts += [(m.line, f"method {m.key!r}", t) for m in methods.values()
              for t in (m.label, m.label_en)]
    texts += [(r.line, "rule", t) for r in rules for t in (r.reason, r.reason_en)]
    texts += [(q.line, "open question", t) for q in questions for t in (q.text, q.text_en)]
    for line, what, text in texts:
        if text is None:
            continue
        folded = text.casefold()
        for phrase in never_say:
            if phrase.casefold() in folded:
                out.add(line, f"{what} says {phrase!r}, which wording.never_say rules out "
                        "(never promise approval)")

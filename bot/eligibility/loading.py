"""Read and check knowledge/eligibility.yaml: the guided check's steps, methods and rules,
validated against the FAQ entries they cite, every error with its line.

bot/knowledge.py reads the rules together with the rest of the knowledge folder, so that
`maxbot check` and /reload list the errors of both at once; `rules_of(knowledge)` gives them.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

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
from index.reading import KnowledgeError, KnowledgeInvalid, line_of, read_yaml, required_text

RULES_FILE = "eligibility.yaml"

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


class _Collect:
    """Gathers every error of the file instead of stopping at the first; knows the FAQ
    entries that a broken FAQ file lost, with the error that lost each."""

    def __init__(self, path: Path, lost: Mapping[str, KnowledgeError]) -> None:
        self.path = path
        self.lost = lost
        self.errors: list[KnowledgeError] = []

    def add(self, line: int | None, message: str,
            follows: KnowledgeError | None = None) -> None:
        self.errors.append(KnowledgeError(self.path, line, message, follows))


def load_eligibility(path: Path, entry_ids: set[str], errors: list[KnowledgeError],
                     lost: Mapping[str, KnowledgeError] | None = None
                     ) -> EligibilityRules | None:
    """Read and validate the rules file against the FAQ entry ids; every problem is added to
    `errors` with its line, and then None is returned. An id among `lost` (entries of a
    broken FAQ file) is reported as following from the error that lost it."""
    try:
        data = read_yaml(path)
    except KnowledgeError as exc:
        errors.append(exc)
        return None
    if not isinstance(data, dict):
        errors.append(KnowledgeError(path, None, "must be a mapping with steps, methods and "
                                     "rules"))
        return None
    out = _Collect(path, lost or {})
    top = line_of(data)
    _known_keys(data, TOP_KEYS, out, "the file")
    for key in ("steps", "methods", "rules"):
        if not data.get(key):
            out.add(top, f"has no {key}")
    never_say = _never_say(data.get("wording"), out, top)
    steps = _steps(data.get("steps") or [], out, top)
    by_key = {s.key: s for s in steps}
    methods = _methods(data.get("methods") or {}, entry_ids, out, top)
    rules = [r for r in (_rule(node, by_key, methods, entry_ids, out, "rule")
                         for node in _list(data.get("rules") or [], out, top, "rules")) if r]
    fallback = None
    if data.get("fallback") is not None:
        fallback = _rule(data["fallback"], by_key, methods, entry_ids, out, "fallback")
        if fallback is not None and (fallback.when or not fallback.methods):
            out.add(fallback.line, "fallback needs methods and no when")
    questions = [q for q in (_open_question(node, by_key, methods, entry_ids, out)
                             for node in _list(data.get("open_questions") or [], out, top,
                                               "open_questions")) if q]
    offer = _ids(data.get("offer_check_for"), entry_ids, out, top, "offer_check_for")
    _check_wording(never_say, steps, methods, [*rules, *([fallback] if fallback else [])],
                   questions, out)
    if out.errors:
        errors.extend(out.errors)
        return None
    return EligibilityRules(path, tuple(steps), methods, tuple(rules), fallback, tuple(questions),
                            offer, never_say)


TOP_KEYS = {"steps", "methods", "rules", "fallback", "open_questions", "offer_check_for",
            "wording"}


def _known_keys(node: dict[str, Any], allowed: set[str], out: _Collect, what: str) -> None:
    """A misspelt key would silently drop a condition or a list: refuse it."""
    unknown = [str(k) for k in node if k != "__line__" and str(k) not in allowed]
    if unknown:
        out.add(line_of(node), f"{what}: unknown key {', '.join(map(repr, unknown))} "
                f"(expected {', '.join(sorted(allowed))})")


def _list(value: Any, out: _Collect, line: int | None, what: str) -> list[Any]:
    if not isinstance(value, list):
        out.add(line, f"{what} must be a list")
        return []
    return value


def _keyed(node: Any, out: _Collect, what: str, line: int | None) -> str | None:
    if not isinstance(node, dict):
        out.add(line, f"each {what} must be a mapping with a key")
        return None
    key = node.get("key")
    if key is None or not KEY.match(str(key)):
        out.add(line_of(node), f"{what} key {key!r} must be 1-20 lowercase letters, digits and '-'")
        return None
    if str(key) == SKIPPED:
        out.add(line_of(node), f"{what} key {SKIPPED!r} is reserved")
        return None
    return str(key)


def _required_text(node: dict[str, Any], key: str, out: _Collect, what: str) -> str | None:
    try:
        return required_text(node, key, out.path, what)
    except KnowledgeError as exc:
        out.errors.append(exc)
        return None


def _steps(nodes: Any, out: _Collect, line: int | None) -> list[Step]:
    steps: list[Step] = []
    for node in _list(nodes, out, line, "steps"):
        key = _keyed(node, out, "step", line)
        if key is None:
            continue
        what = f"step {key!r}"
        _known_keys(node, {"key", "label", "question", "hint", "ask_if", "options"}, out, what)
        if any(s.key == key for s in steps):
            out.add(line_of(node), f"duplicate step key {key!r}")
            continue
        label = _required_text(node, "label", out, what)
        question = _required_text(node, "question", out, what)
        options: list[Option] = []
        for option_node in _list(node.get("options") or [], out, line_of(node), f"{what}: options"):
            option_key = _keyed(option_node, out, f"{what}: option", line_of(node))
            if option_key is None:
                continue
            _known_keys(option_node, {"key", "label"}, out, f"{what}: option {option_key!r}")
            option_label = _required_text(option_node, "label", out,
                                          f"{what}: option {option_key!r}")
            if any(o.key == option_key for o in options):
                out.add(line_of(option_node), f"{what}: duplicate option {option_key!r}")
            elif option_label is not None:
                if len(option_label) > LABEL_CHARS:
                    out.add(line_of(option_node), f"{what}: option {option_key!r} label is longer "
                            f"than {LABEL_CHARS} characters (a button shows no more)")
                options.append(Option(option_key, option_label))
        if not node.get("options"):
            out.add(line_of(node), f"{what} has no options")
        ask_if = _conditions(node.get("ask_if"), {s.key: s for s in steps}, out, line_of(node),
                             f"{what}: ask_if", later_hint=True)
        hint = node.get("hint")
        if label is not None and question is not None:
            steps.append(Step(key, label, question, tuple(options),
                              " ".join(str(hint).split()) if hint else None, ask_if,
                              line_of(node) or 1))
    return steps


def _conditions(node: Any, steps: dict[str, Step], out: _Collect, line: int | None, what: str,
                later_hint: bool = False) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """`{step: [option, ...]}` checked against the steps; 'skipped' matches no answer."""
    if node is None:
        return ()
    if not isinstance(node, dict):
        out.add(line, f"{what} must map step keys to option keys")
        return ()
    line = line_of(node) or line
    conditions = []
    for step_key, allowed in node.items():
        if step_key == "__line__":
            continue
        step = steps.get(str(step_key))
        if step is None:
            where = " before this step" if later_hint else ""
            known = ", ".join(steps) or "none"
            out.add(line, f"{what}: unknown step {step_key!r}{where} (steps: {known})")
            continue
        values = [allowed] if isinstance(allowed, str) else allowed
        if not isinstance(values, list) or not values:
            out.add(line, f"{what}: {step_key} must list option keys")
            continue
        keys = [str(v) for v in values]
        unknown = [k for k in keys if k != SKIPPED and step.option(k) is None]
        if unknown:
            known = ", ".join(o.key for o in step.options)
            out.add(line, f"{what}: unknown option {', '.join(map(repr, unknown))} of step "
                    f"{step_key!r} (options: {known}, {SKIPPED})")
            continue
        conditions.append((step.key, tuple(keys)))
    return tuple(conditions)


def _ids(value: Any, entry_ids: set[str], out: _Collect, line: int | None,
         what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list):
        out.add(line, f"{what} must be a list of FAQ entry ids")
        return ()
    ids = tuple(str(v) for v in values)
    # An id the FAQ files lost to an error is unknown because of it: reported as following
    # from that error, apart from ids that are unknown here (a typo in this file).
    by_cause: dict[int, tuple[KnowledgeError | None, list[str]]] = {}
    for unknown in (i for i in ids if i not in entry_ids):
        cause = out.lost.get(unknown)
        by_cause.setdefault(id(cause), (cause, []))[1].append(unknown)
    for cause, unknown in by_cause.values():
        out.add(line, f"{what}: unknown FAQ entry {', '.join(map(repr, unknown))}", cause)
    return tuple(i for i in ids if i in entry_ids)


def _methods(node: Any, entry_ids: set[str], out: _Collect,
             line: int | None) -> dict[str, Method]:
    if not isinstance(node, dict):
        out.add(line, "methods must map method keys to a label and entries")
        return {}
    methods = {}
    for key, value in node.items():
        if key == "__line__":
            continue
        if not KEY.match(str(key)):
            out.add(line_of(node), f"method key {key!r} must be 1-20 lowercase letters, digits "
                    "and '-'")
            continue
        if not isinstance(value, dict):
            out.add(line_of(node), f"method {key!r} needs a label and entries")
            continue
        _known_keys(value, {"label", "entries"}, out, f"method {key!r}")
        label = _required_text(value, "label", out, f"method {key!r}")
        entries = _ids(value.get("entries"), entry_ids, out, line_of(value), f"method {key!r}")
        if label is not None:
            methods[str(key)] = Method(str(key), label, entries, line_of(value) or 1)
    return methods


def _rule(node: Any, steps: dict[str, Step], methods: dict[str, Method], entry_ids: set[str],
          out: _Collect, what: str) -> Rule | None:
    if not isinstance(node, dict):
        out.add(None, f"each {what} must be a mapping with reason and entries")
        return None
    line = line_of(node)
    _known_keys(node, {"when", "methods", "reason", "entries"}, out, what)
    reason = _required_text(node, "reason", out, what)
    when = _conditions(node.get("when"), steps, out, line, f"{what}: when")
    raw_methods = node.get("methods") or []
    if not isinstance(raw_methods, list):
        out.add(line, f"{what}: methods must be a list of method keys")
        raw_methods = []
    unknown = [str(m) for m in raw_methods if str(m) not in methods]
    if unknown:
        out.add(line, f"{what}: unknown method {', '.join(map(repr, unknown))} "
                f"(methods: {', '.join(methods) or 'none'})")
    entries = _ids(node.get("entries"), entry_ids, out, line, what)
    if not node.get("entries"):
        out.add(line, f"{what} has no entries (the FAQ entries behind its reason)")
    if reason is None:
        return None
    return Rule(when, tuple(str(m) for m in raw_methods if str(m) in methods), reason, entries,
                line or 1)


def _open_question(node: Any, steps: dict[str, Step], methods: dict[str, Method],
                   entry_ids: set[str], out: _Collect) -> OpenQuestion | None:
    if not isinstance(node, dict):
        out.add(None, "each open question must be a mapping with text")
        return None
    line = line_of(node)
    _known_keys(node, {"text", "when", "methods", "entries"}, out, "open question")
    text = _required_text(node, "text", out, "open question")
    when = _conditions(node.get("when"), steps, out, line, "open question: when")
    raw_methods = node.get("methods") or []
    unknown = [str(m) for m in raw_methods if str(m) not in methods]
    if unknown:
        out.add(line, f"open question: unknown method {', '.join(map(repr, unknown))}")
    entries = _ids(node.get("entries"), entry_ids, out, line, "open question")
    if text is None:
        return None
    return OpenQuestion(text, when, tuple(str(m) for m in raw_methods if str(m) in methods),
                        entries, line or 1)


def _never_say(node: Any, out: _Collect, line: int | None) -> tuple[str, ...]:
    if node is None:
        return ()
    if not isinstance(node, dict):
        out.add(line, "wording must be a mapping (never_say: [...])")
        return ()
    value = node.get("never_say") or []
    if not isinstance(value, list):
        out.add(line_of(node), "wording.never_say must be a list of phrases")
        return ()
    return tuple(str(v).strip() for v in value if str(v).strip())


def _check_wording(never_say: tuple[str, ...], steps: list[Step], methods: dict[str, Method],
                   rules: list[Rule], questions: list[OpenQuestion], out: _Collect) -> None:
    """No text may promise what wording.never_say lists."""
    if not never_say:
        return
    texts: list[tuple[int | None, str, str]] = []
    for step in steps:
        texts += [(step.line, f"step {step.key!r}", step.question)]
        texts += [(step.line, f"step {step.key!r}", o.label) for o in step.options]
        if step.hint:
            texts.append((step.line, f"step {step.key!r}", step.hint))
    texts += [(m.line, f"method {m.key!r}", m.label) for m in methods.values()]
    texts += [(r.line, "rule", r.reason) for r in rules]
    texts += [(q.line, "open question", q.text) for q in questions]
    for line, what, text in texts:
        folded = text.casefold()
        for phrase in never_say:
            if phrase.casefold() in folded:
                out.add(line, f"{what} says {phrase!r}, which wording.never_say rules out "
                        "(never promise approval)")

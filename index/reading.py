"""Reading a knowledge file: YAML that remembers the line of every mapping, and the errors
that name the file and line to fix. Shared by the knowledge loader (index/knowledge.py) and
the bot's readers of the same folder (the guided check's rules, bot/eligibility/loading.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml


class KnowledgeError(Exception):
    """A problem in one knowledge file, with the place to fix it.

    `follows`: the error in another place that this one follows from (an FAQ entry a rule
    cites is unknown because the file that holds it is broken), so that an admin is sent to
    the file to fix, not to the one that only refers to it.
    """

    def __init__(self, path: Path | str, line: int | None, message: str,
                 follows: KnowledgeError | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.message = message
        self.follows = follows
        super().__init__(str(self))

    @property
    def place(self) -> str:
        return f"{self.path}:{self.line}" if self.line else str(self.path)

    def __str__(self) -> str:
        if self.follows is None:
            return f"{self.place}: {self.message}"
        return f"{self.place}: {self.message} (follows from {self.follows.place}: fix that first)"


class KnowledgeInvalid(Exception):
    """The knowledge base has errors; `errors` lists every one of them, the causes first
    (`causes`) and then those that follow from them (`knock_on`)."""

    def __init__(self, errors: list[KnowledgeError]) -> None:
        self.causes = [e for e in errors if e.follows is None]
        self.knock_on = [e for e in errors if e.follows is not None]
        self.errors = [*self.causes, *self.knock_on]
        super().__init__("\n".join(str(e) for e in self.errors))


# --- YAML with line numbers -------------------------------------------------------------


class _LineLoader(yaml.SafeLoader):
    """A safe loader that remembers the line of every mapping as the key `__line__`."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: Path, text: str | None = None, line_offset: int = 0) -> Any:
    """The YAML in `path` (or `text`, found at `line_offset` in it), every mapping with its
    line as the key `__line__`; a KnowledgeError with the line when it cannot be read."""
    try:
        raw = path.read_text(encoding="utf-8") if text is None else text
        return yaml.load(raw, Loader=_LineLoader)
    except UnicodeDecodeError as exc:
        raise KnowledgeError(path, None, f"not UTF-8 text ({exc.reason})") from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 + line_offset if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise KnowledgeError(path, line, f"invalid YAML: {problem}") from exc
    except yaml.YAMLError as exc:
        raise KnowledgeError(path, None, f"invalid YAML: {exc}") from exc


_WRITTEN_ID = re.compile(r"^[ \t-]*id:[ \t]*[\"']?([a-z0-9][a-z0-9-]{0,59})[\"']?[ \t]*(#.*)?$",
                         re.MULTILINE)


def ids_written_in(path: Path) -> list[str]:
    """The ids on the `id:` lines of a file that cannot be read as YAML: the FAQ entries a
    broken file would hold."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [match.group(1) for match in _WRITTEN_ID.finditer(text)]


def line_of(node: Any) -> int | None:
    """The line a mapping read by read_yaml starts on."""
    return node.get("__line__") if isinstance(node, dict) else None


def required_text(node: dict[str, Any], key: str, path: Path, what: str) -> str:
    """The text under `key`, on one line (an answer keeps its lines); an error names the line
    of the mapping that lacks it."""
    value = node.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise KnowledgeError(path, line_of(node), f"{what} has no {key}")
    if not isinstance(value, str | int | float):
        raise KnowledgeError(path, line_of(node), f"{what}: {key} must be text")
    return " ".join(str(value).split()) if key != "answer" else str(value).strip()

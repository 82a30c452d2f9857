"""Reading a knowledge file: YAML that remembers the line of every mapping, and the errors
that name the file and line to fix. Shared by the knowledge loader (index/knowledge.py) and
the bot's readers of the same folder (the guided check's rules, bot/eligibility/loading.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class KnowledgeError(Exception):
    """A problem in one knowledge file, with the place to fix it."""

    def __init__(self, path: Path | str, line: int | None, message: str) -> None:
        self.path = Path(path)
        self.line = line
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        place = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{place}: {self.message}"


class KnowledgeInvalid(Exception):
    """The knowledge base has errors; `errors` lists every one of them."""

    def __init__(self, errors: list[KnowledgeError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


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

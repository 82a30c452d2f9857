"""Reading a knowledge file: YAML that remembers the line of every mapping, its shape checked
against a declared pydantic model, and the errors that name the file and line to fix. Shared by
the knowledge loader (index/knowledge.py) and the bot's readers of the same folder (the guided
check's rules, bot/eligibility/loading.py).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ModelWrapValidatorHandler,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError


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


# libyaml reads the knowledge about ten times faster (all of knowledge/: 0.15 s -> 0.013 s);
# the pure-Python parser stands in where PyYAML was built without it.
class _LineLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """A safe loader that remembers the line of every mapping as the key `__line__`."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


def _construct_timestamp(loader: _LineLoader, node: yaml.ScalarNode) -> Any:
    # 2025-13-01 looks like a date to YAML: without this, the ValueError has no line.
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError as exc:
        raise yaml.constructor.ConstructorError(
            None, None, f"{node.value!r} is not a date ({exc})", node.start_mark) from exc


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)


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


# --- shapes: declared models, their errors at file:line ----------------------------------


def without_line(value: Any) -> Any:
    return {k: v for k, v in value.items() if k != "__line__"} if isinstance(value, dict) else value


class Shape(BaseModel):
    """A mapping of a knowledge file as a declared model. The `__line__` read_yaml adds is not
    one of its keys; a key the model does not declare is ignored (`Strict` refuses it)."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)
    _line: int | None = PrivateAttr(default=None)

    @model_validator(mode="wrap")
    @classmethod
    def _line_apart(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        shape = handler(without_line(data))
        shape._line = line_of(data)
        return shape

    @property
    def line(self) -> int | None:
        """The line its mapping starts on."""
        return self._line


class Strict(Shape):
    """A shape whose unknown keys are errors: a misspelt key would silently drop a condition
    or a list."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_validator(mode="wrap")
    @classmethod
    def _known_keys(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        unknown = unknown_keys(cls, data)
        if unknown is None:
            return handler(data)
        # Listed with the errors of the keys it does declare, not instead of them.
        problems: list[InitErrorDetails] = [{"type": refuse(unknown), "loc": (), "input": data}]
        try:
            handler({k: v for k, v in data.items() if k == "__line__" or k in cls.model_fields})
        except ValidationError as exc:
            problems += [{"type": PydanticCustomError(e["type"], e["msg"]), "loc": e["loc"],
                          "input": e["input"]} for e in exc.errors()]
        raise ValidationError.from_exception_data(cls.__name__, problems)


def unknown_keys(model: type[BaseModel], data: Any) -> str | None:
    """What is wrong with the keys of `data` that `model` does not declare, if any."""
    if not isinstance(data, dict):
        return None
    unknown = [str(k) for k in data if k != "__line__" and str(k) not in model.model_fields]
    if not unknown:
        return None
    return (f"unknown key {', '.join(map(repr, unknown))} "
            f"(expected {', '.join(sorted(model.model_fields))})")


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text(value: Any) -> str:
    if _blank(value):
        raise PydanticCustomError("blank", "is empty")
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise PydanticCustomError("knowledge", "{field} must be text")
    return str(value)


def _line_text(value: Any) -> str:
    return " ".join(_text(value).split())


def _optional_line_text(value: Any) -> str | None:
    return None if _blank(value) else _line_text(value)


def texts(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        raise PydanticCustomError("knowledge", "{field} must be a list of text")
    return tuple(str(v).strip() for v in value if str(v).strip())


def _date(value: Any) -> dt.date:
    if value is None:
        raise PydanticCustomError("blank", "is empty")
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise PydanticCustomError("knowledge", "{field} {value} is not a date (YYYY-MM-DD)",
                                  {"value": repr(value)}) from None


def _one_or_many(value: Any) -> Any:
    return () if value is None else [value] if isinstance(value, str) else value


# Text on one line (whitespace runs folded), required and not blank.
LineText = Annotated[str, BeforeValidator(_line_text)]
# Text that keeps its lines (an answer), required and not blank.
Text = Annotated[str, BeforeValidator(lambda value: _text(value).strip())]
OptionalLineText = Annotated[str | None, BeforeValidator(_optional_line_text)]
# A list of text; missing means none; blank items are dropped.
Texts = Annotated[tuple[str, ...], BeforeValidator(texts)]
# A date, as YAML reads 2025-12-04 or as text.
Date = Annotated[dt.date, BeforeValidator(_date)]
# One name or a list of names.
Names = Annotated[tuple[str, ...], BeforeValidator(_one_or_many)]
# A mapping whose line read_yaml noted.
Lined = BeforeValidator(without_line)


def refuse(message: str, **values: Any) -> PydanticCustomError:
    """An error of a model's validator, said as the knowledge files' errors say it."""
    return PydanticCustomError("knowledge", message, values)


M = TypeVar("M", bound=BaseModel)


Loc = tuple[int | str, ...]


def validated(model: type[M], node: Any, path: Path,
              what: str | Callable[[Loc], tuple[str, Loc]],
              context: dict[str, Any] | None = None) -> M:
    """`node`, read by read_yaml, as `model`: KnowledgeInvalid listing every problem, each at
    the line of the innermost mapping it is in, said of `what` ("entry 'fund-size'"), or of
    what `what` calls the place of the problem (then with the rest of the place)."""
    try:
        return model.model_validate(node, context=context)
    except ValidationError as exc:
        errors = []
        for error in exc.errors(include_url=False):
            said, loc = what(error["loc"]) if callable(what) else (what, error["loc"])
            errors.append(KnowledgeError(path, line_at(node, error["loc"]),
                                         shape_message({**error, "loc": loc}, said)))
        raise KnowledgeInvalid(errors) from None


def line_at(node: Any, loc: Sequence[int | str]) -> int | None:
    """The line of the innermost mapping on the way to `loc` in `node`."""
    line = line_of(node)
    for part in loc:
        found = ((isinstance(node, dict) and part in node)
                 or (isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)))
        if not found:
            break
        node = node[part]
        line = line_of(node) or line
    return line


# What a missing or blank key is called in "has no ...".
_CALLED = {"as_of": "as_of date"}


def shape_message(error: ErrorDetails, what: str) -> str:
    """A pydantic error in the words of the knowledge files' errors."""
    names = [str(part) for part in error["loc"] if not isinstance(part, int)]
    field = ".".join(names)
    prefix = f"{what}: " if what else ""
    kind = error["type"]
    if kind in ("missing", "blank") and names and names[-1].endswith("_en"):
        return f"{what} has no {names[-1]} (the English twin of {names[-1][:-3]})".strip()
    if kind in ("missing", "blank") and names:
        return f"{what} has no {_CALLED.get(names[-1], names[-1])}".strip()
    if kind == "extra_forbidden":
        return f"{prefix}unknown key {names[-1]!r}"
    if kind == "knowledge":  # "{field}" in a message of refuse() or of the types above
        return prefix + error["msg"].replace("{field}", names[-1] if names else "value")
    return f"{prefix}{field + ': ' if field else ''}{error['msg'][:1].lower()}{error['msg'][1:]}"


def context_of(info: ValidationInfo, key: str) -> Any:
    """What the caller of validated() passed for a model's validators (known ids ...)."""
    return (info.context or {})[key]

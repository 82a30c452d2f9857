"""The layout holds: no module imports one that imports it back (directly or round a circle),
and every import points down the layers, from the entry points and handlers to the index.

Every import statement counts, also those inside functions and under TYPE_CHECKING: a lazy
import is how a circle hides (`admin` and `uploads` imported each other that way).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path

from tests.conftest import PROJECT

PACKAGES = ("bot", "index", "testing", "bench", "tests")

# Top first. A module may import modules of its own room and of the rooms of lower layers;
# never a room of its own layer or of a higher one. A room is a module or a package with
# everything in it; a module belongs to the room with the longest name that contains it.
LAYERS: list[list[str]] = [
    ["tests"],
    ["bench"],
    ["testing"],  # the Bot API stand-in, the bot run against it, throwaway databases
    ["bot.__main__"],
    ["bot.cli"],
    ["bot.app", "bot.bench", "bot.answering.fit"],  # fit: `maxbot fit`, a tool on answering
    ["bot.handlers"],
    ["bot.eligibility.conversation"],
    ["bot.services"],
    ["bot.delivery", "bot.reloading", "bot.reports", "bot.documents", "bot.learning"],
    ["bot.knowledge", "bot.followups", "bot.evaluation"],
    ["bot.replies", "bot.settings", "bot.eligibility.loading"],
    ["bot.answering", "bot.storage", "bot.eligibility.rules", "bot.particles", "bot.keyboards",
     "bot.language"],
    ["index"],
]
# Packages that only hold rooms: their __init__ imports nothing of ours.
HOLDERS = {"bot", "bot.eligibility"}


def project_modules(root: Path) -> dict[str, Path]:
    """Every module of the project's packages by dotted name."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def imported_names(module: str, path: Path) -> Iterator[str]:
    """The dotted names every import statement of the module reaches for, relative ones
    resolved. `from a import b` gives a.b (a module, or a name in a)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            yield from (f"{base}.{alias.name}" for alias in node.names)


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it imports (the longest module each name is in)."""
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets = set()
        for name in imported_names(module, path):
            parts = name.split(".")
            found = next((".".join(parts[:n]) for n in range(len(parts), 0, -1)
                          if ".".join(parts[:n]) in modules), None)
            if found is not None and found != module:
                targets.add(found)
        graph[module] = targets
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle (a → … → a) for every group of modules that import each other round."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_circle_in(group, graph) for group in groups]


def _circle_in(group: set[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest way round from the group's first module back to it."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node] & group):
                if target == start:
                    return [*paths[node], start]
                if target not in paths:
                    paths[target] = [*paths[node], target]
                    following.append(target)
        frontier = following
    raise AssertionError("a strongly connected group has a way round")


def room_of(module: str, layers: list[list[str]]) -> str | None:
    rooms = [room for layer in layers for room in layer
             if module == room or module.startswith(room + ".")]
    return max(rooms, key=len, default=None)


def wrong_way(graph: dict[str, set[str]], layers: list[list[str]],
              holders: Iterable[str] = ()) -> list[str]:
    """Every import that goes sideways or up the layers, and every module without a room."""
    level = {room: n for n, layer in enumerate(layers) for room in layer}
    problems = []
    for module, targets in sorted(graph.items()):
        room = room_of(module, layers)
        if room is None:
            if module not in holders or targets:
                problems.append(f"{module} is in no room of LAYERS (tests/test_layout.py)")
            continue
        for target in sorted(targets):
            other = room_of(target, layers)
            if other is None or other == room:
                continue
            if level[other] <= level[room]:
                where = "the same layer" if level[other] == level[room] else "a higher layer"
                problems.append(f"{module} imports {target}: {other} is in {where} than {room}")
    return problems


def test_no_module_imports_one_that_imports_it_back() -> None:
    found = circles(import_graph(project_modules(PROJECT)))
    assert not found, "import circles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_imports_point_down_the_layers_from_handlers_to_index() -> None:
    problems = wrong_way(import_graph(project_modules(PROJECT)), LAYERS, HOLDERS)
    assert not problems, "\n".join(problems)


def test_the_checks_see_a_lazy_circle_and_an_import_up_the_layers(tmp_path: Path) -> None:
    (tmp_path / "index").mkdir()
    (tmp_path / "bot" / "handlers").mkdir(parents=True)
    for path, text in {
        "index/__init__.py": "",
        "index/search.py": "def hits():\n    from bot.handlers import questions\n",
        "bot/__init__.py": "",
        "bot/handlers/__init__.py": "",
        "bot/handlers/questions.py": "from index.search import hits\nfrom . import admin\n",
        "index/letters.py": "",
        "bot/handlers/admin.py": "from typing import TYPE_CHECKING\n"
                                 "if TYPE_CHECKING:\n    from index import letters\n",
    }.items():
        (tmp_path / path).write_text(text, encoding="utf-8")
    graph = import_graph(project_modules(tmp_path))
    assert graph["bot.handlers.questions"] == {"index.search", "bot.handlers.admin"}
    assert graph["bot.handlers.admin"] == {"index.letters"}
    assert circles(graph) == [["bot.handlers.questions", "index.search",
                               "bot.handlers.questions"]]
    assert wrong_way(graph, [["bot.handlers"], ["index"]], {"bot"}) == [
        "index.search imports bot.handlers.questions: bot.handlers is in a higher layer "
        "than index"]


# "No file over ~400 lines without a reason at its top" (STYLE.md): a little slack for the
# file that grows by a line, none for one that grows by a screen.
LONG_LINES = 420


def test_every_module_over_400_lines_says_why_at_its_top() -> None:
    unexplained = []
    for module, path in project_modules(PROJECT).items():
        text = path.read_text(encoding="utf-8")
        if text.count("\n") <= LONG_LINES or module.startswith("tests"):
            continue
        docstring = ast.get_docstring(ast.parse(text)) or ""
        if "over 400 lines" not in " ".join(docstring.split()):
            unexplained.append(f"{path.relative_to(PROJECT)} ({text.count(chr(10))} lines)")
    assert unexplained == []


def test_the_readme_says_where_every_module_lives() -> None:
    """Each module of bot/, index/ and testing/ is named in the README's "where each concern
    lives" table, by its path, its file name beside its package's, or its folder."""
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("Where each concern lives:"):]
    table = table[:table.index("\n\n", table.index("| concern |"))]
    unnamed = []
    for package in ("bot", "index", "testing"):
        for path in sorted((PROJECT / package).rglob("*.py")):
            relative = path.relative_to(PROJECT)
            if path.name in ("__init__.py", "__main__.py") or "migrations" in relative.parts:
                continue
            folder = f"{relative.parent.as_posix()}/"
            if not (f"`{relative.as_posix()}`" in table or f"`{path.name}`" in table
                    or f"`{folder}`" in table or f"{path.name}`" in table):
                unnamed.append(relative.as_posix())
    assert unnamed == []

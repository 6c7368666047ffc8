"""The house rules that keep the layout readable: the stages in their order (no module imports from a later stage,
function-level imports included), no import circle in distill/, no long module without its reason."""

import ast
from pathlib import Path

from conftest import REPO

LIBRARY = REPO / "distill"
LONG = 420  # "about 400 lines"

# The stages in the order of docs/architecture.md: a module may import from its own stage and the ones before it.
STAGES = [
    ("distill", "distill._env", "distill._moved", "distill.errors", "distill.common"),  # and the package itself
    ("distill.data",),
    ("distill.components",),
    ("distill.pipelines",),
    ("distill.teacher",),
    ("distill.training",),
    ("distill.evaluation",),
    ("distill.adapt",),
    ("distill.cli",),
    ("distill.ui",),
]


def _stage(module: str) -> int:
    """The index of the stage a module belongs to, by its longest matching prefix."""
    best, length = None, -1
    for index, prefixes in enumerate(STAGES):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > length:
                best, length = index, len(prefix)
    assert best is not None, f"{module} is in no stage: add it to STAGES and docs/architecture.md"
    return best


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """Every distill module that ``path`` imports, at its top or inside a function body."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {name for name in names if name in modules}
    return found


def _graph() -> dict[str, set[str]]:
    paths = {_module_name(p): p for p in LIBRARY.rglob("*.py")}
    modules = set(paths)
    # A package's __init__ that only re-exports its own submodules is not an edge back up.
    return {name: {m for m in _imports(path, modules) if m != name} for name, path in paths.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_circle_in_the_library():
    graph = _graph()
    assert "distill.training.tasks.common" in graph and graph["distill.training.tasks.reader"] >= {
        "distill.training.tasks.common"
    }
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_no_module_imports_from_a_later_stage():
    graph = _graph()
    assert len(graph) > 40 and {_stage(m) for m in graph} == set(range(len(STAGES)))
    late = sorted(
        f"{module} -> {imported}"
        for module, imports in graph.items()
        for imported in imports
        if _stage(imported) > _stage(module)
    )
    assert not late, "imports from a later stage: " + "; ".join(late)


def test_the_stage_order_is_the_one_architecture_md_draws():
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    table = text[text.index("## The stages") : text.index("## The data flow")]
    drawn = [
        row.split("`")[1].rstrip("/").removesuffix(".py").replace("/", ".")
        for row in table.splitlines()
        if row.startswith("| ") and row[2].isdigit()
    ]
    assert drawn == [prefixes[-1] for prefixes in STAGES]  # each stage's package last in its tuple
    packages = sorted(p.name for p in LIBRARY.iterdir() if p.is_dir() and p.name != "__pycache__")
    assert packages == sorted(name.split(".")[1] for name in drawn if (LIBRARY / name.split(".")[1]).is_dir())


def test_a_later_stage_import_is_found():
    assert _stage("distill.evaluation.runner") > _stage("distill.training.tasks.reader")
    assert _stage("distill.common.files") == 0 and _stage("distill.ui.live") == len(STAGES) - 1


def test_the_circle_finder_finds_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_long_modules_say_why_at_their_top():
    unexplained = []
    for path in sorted([*LIBRARY.rglob("*.py"), *(REPO / "ui").rglob("*.py")]):
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > LONG and "Why one module" not in (ast.get_docstring(ast.parse(text)) or ""):
            unexplained.append(f"{path.relative_to(REPO)} ({text.count(chr(10))} lines)")
    assert not unexplained, "split these or say why at their top: " + ", ".join(unexplained)


def test_the_library_holds_no_benchmark_probe():
    assert not list(LIBRARY.glob("bench_*.py"))
    assert (REPO / "benchmarks" / "probes" / "passage_length.py").is_file()

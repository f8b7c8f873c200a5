"""The package layout holds its architecture: no stage imports a later one, no module imports
itself back through others, each stage's docstring says what it owns and imports, the network
never loads the latent processes or the loss, and ruff's format and lint hold."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import protgen

ROOT = Path(protgen.__file__).parent
# Stages in pipeline order; a module may import its own stage and earlier ones only.
STAGES = ["geometry", "data", "method", "network", "training", "sampling", "evaluation", "cli"]
FOUNDATION = {"errors", "files", "progress", "workers"}  # shared by every stage, import no stage


def _stage(module: str) -> int | None:
    """Rank of a protgen module name (protgen.x.y): −1 for the foundation, None for the package
    itself."""
    parts = module.split(".")
    if len(parts) < 2:
        return None
    if parts[1] in FOUNDATION:
        return -1
    return STAGES.index(parts[1])


def _imports(path: Path, package: str = "protgen") -> set[str]:
    """Every ``package`` name a module imports, at module level and inside functions alike."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(package):
            found |= {f"{node.module}.{a.name}" for a in node.names} | {node.module}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith(package)}
    return found


def _modules(root: Path, package: str) -> dict[str, Path]:
    """Module names of a package directory (subpackages by their ``__init__``)."""
    return {
        ".".join((package, *path.relative_to(root).with_suffix("").parts)).removesuffix(
            ".__init__"
        ): path
        for path in sorted(root.rglob("*.py"))
    }


def import_graph(root: Path, package: str = "protgen") -> dict[str, set[str]]:
    """Module → the package's modules it imports (``from a import b`` counts as importing the
    module a.b where that is one, and a). The package's own ``__init__`` — the API, which sits
    above every stage and imports lazily — is left out."""
    modules = _modules(root, package)
    graph = {}
    for name, path in modules.items():
        if name == package:
            continue
        graph[name] = {n for n in _imports(path, package) if n in modules and n != package}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (or a module importing itself):
    every import cycle, by Tarjan's algorithm."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_every_module_lives_in_a_stage_and_imports_no_later_stage():
    checked = 0
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in ("__init__.py", "__main__.py"):
            continue  # the public API and the entry point sit above every stage
        name = "protgen." + ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
        own = _stage(name)
        assert own is not None, f"{rel} is outside the stage folders"
        for imported in _imports(path):
            if imported in ("protgen", "protgen.__version__"):
                continue
            other = _stage(imported)
            assert other is not None and other <= own, f"{name} imports {imported}, a later stage"
            checked += 1
    assert checked > 50


def test_no_module_imports_itself_back_through_others():
    graph = import_graph(ROOT)
    assert len(graph) > 50 and sum(map(len, graph.values())) > 100
    assert import_cycles(graph) == []


def test_the_cycle_check_finds_a_cycle_through_a_function_level_import(tmp_path):
    """A package whose process module imports its insertion module inside a function (the shape
    of the cycle protgen once had), while insertion imports process at module level."""
    package = tmp_path / "toy"
    (package / "method").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "method" / "__init__.py").write_text("")
    (package / "method" / "process.py").write_text(
        "def make():\n    from toy.method.insertion import Insertion\n    return Insertion()\n"
    )
    (package / "method" / "insertion.py").write_text(
        "from toy.method.process import make\n\nclass Insertion:\n    pass\n"
    )
    (package / "method" / "paths.py").write_text("from toy.method import process\n")
    graph = import_graph(package, "toy")
    assert graph["toy.method.paths"] == {"toy.method", "toy.method.process"}
    assert import_cycles(graph) == [["toy.method.insertion", "toy.method.process"]]
    (package / "method" / "process.py").write_text("X = 1\n")
    assert import_cycles(import_graph(package, "toy")) == []


def _without_parentheses(text: str) -> str:
    out, depth = [], 0
    for ch in text:
        depth += ch == "("
        if depth == 0:
            out.append(ch)
        depth -= ch == ")" and depth > 0
    return "".join(out)


def _declared(doc: str, label: str) -> set[str]:
    """The names an ``Owns:``/``May import:`` sentence lists (parenthesised notes left out)."""
    text = " ".join(doc.split()).split(f"{label}: ", 1)[1]
    end = text.index(". May import:") if label == "Owns" else len(text)
    names = _without_parentheses(text[:end]).rstrip(".")
    return {n.strip() for n in names.split(",")} - {"none"}


def test_each_stage_says_which_modules_it_owns_and_which_stages_it_imports():
    """The "Owns:" and "May import:" lines of every stage's __init__ are what the code does."""
    graph = import_graph(ROOT)
    for stage in STAGES:
        doc = ast.get_docstring(ast.parse((ROOT / stage / "__init__.py").read_text()))
        modules = {p.stem for p in (ROOT / stage).glob("*.py")} - {"__init__"}
        assert _declared(doc, "Owns") == modules, stage
        imported = {
            other.split(".")[1]
            for name, deps in graph.items()
            if name.split(".")[1] == stage
            for other in deps
            if other.split(".")[1] in STAGES and other.split(".")[1] != stage
        }
        assert _declared(doc, "May import") == imported, stage


def _ruff() -> str | None:
    try:
        from ruff.__main__ import find_ruff_bin

        return str(find_ruff_bin())
    except (ImportError, FileNotFoundError):
        return shutil.which("ruff")


def test_ruff_format_and_ruff_check_are_clean():
    """The tree is as `ruff format` leaves it and `ruff check` finds nothing (pyproject.toml's
    settings: 100 columns, pyflakes, import order, pycodestyle errors); skipped without ruff or
    outside a checkout."""
    ruff, repo = _ruff(), ROOT.parent
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    if not (repo / "pyproject.toml").is_file() or not (repo / "tests").is_dir():
        pytest.skip("protgen is not imported from a checkout")
    for check in (["format", "--check"], ["check"]):
        done = subprocess.run(
            [ruff, *check, "protgen", "tests", "scripts"], cwd=repo, capture_output=True, text=True
        )
        assert done.returncode == 0, f"ruff {' '.join(check)}:\n{done.stdout[-3000:]}{done.stderr}"


def test_network_and_model_do_not_load_the_process_or_the_loss():
    code = (
        "import sys, protgen.network.model, protgen.network.frame_network; "
        "print(sorted(m for m in sys.modules "
        "if m in ('protgen.method.process', 'protgen.method.loss')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_test_the_theory_cites_exists():
    """protgen/THEORY.md backs its statements with [test_name] (a test function) or [test_file]
    (a module of tests/): each must name one, so a renamed or deleted test cannot leave a
    statement unbacked. Skipped outside a checkout."""
    import re

    tests = ROOT.parent / "tests"
    if not tests.is_dir():
        pytest.skip("protgen is not imported from a checkout")
    cited = set(re.findall(r"\[(test_\w+)\]", (ROOT / "THEORY.md").read_text()))
    modules = {p.stem for p in tests.glob("test_*.py")}
    defined = set(
        re.findall(r"^def (test_\w+)", "\n".join(p.read_text() for p in tests.glob("*.py")), re.M)
    )
    assert cited, "THEORY.md cites its tests as [test_name]"
    assert not cited - modules - defined, (
        f"cited but not in tests/: {sorted(cited - modules - defined)}"
    )

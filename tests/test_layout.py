"""The package layout holds its architecture: no stage imports a later one, and the network
never loads the latent processes or the loss."""

import ast
import subprocess
import sys
from pathlib import Path

import protgen

ROOT = Path(protgen.__file__).parent
# Stages in pipeline order; a module may import its own stage and earlier ones only.
STAGES = ["geometry", "data", "method", "network", "training", "sampling", "evaluation", "cli"]
FOUNDATION = {"errors", "files", "progress", "workers"}  # shared by every stage, import no stage


def _stage(module: str) -> int | None:
    """Rank of a protgen module name (protgen.x.y): −1 for the foundation, None for the package itself."""
    parts = module.split(".")
    if len(parts) < 2:
        return None
    if parts[1] in FOUNDATION:
        return -1
    return STAGES.index(parts[1])


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):  # module level and inside functions alike
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("protgen"):
            found |= {
                f"{node.module}.{a.name}" if node.module == "protgen" else node.module
                for a in node.names
            }
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("protgen")}
    return found


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
            if imported == "protgen.__version__" or imported == "protgen":
                continue
            other = _stage(imported)
            assert other is not None and other <= own, f"{name} imports {imported}, a later stage"
            checked += 1
    assert checked > 50


def test_network_and_model_do_not_load_the_process_or_the_loss():
    code = (
        "import sys, protgen.network.model, protgen.network.ipa; "
        "print(sorted(m for m in sys.modules if m in ('protgen.method.process', 'protgen.method.loss')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

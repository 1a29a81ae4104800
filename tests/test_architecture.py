"""The package's shape holds: no import cycles, imports point down the layers, one owner of the run folder's names."""

import ast
from pathlib import Path
from typing import Dict, Set

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gdrun"

# Lower layers never import higher ones; a layer may import itself and anything below it.
LAYERS = {
    "gdrun.errors": 0,
    "gdrun.config": 1,
    "gdrun.rundir": 2,
    "gdrun.training": 3,
    "gdrun.plots": 4,
    "gdrun.jobs": 5,
    "gdrun.finisher": 5,
    "gdrun.sweeps": 5,
    "gdrun.selection": 5,
    "gdrun.api": 5,
    "gdrun.labs": 6,
    "gdrun.commands": 7,
    "gdrun.__init__": 8,
    "gdrun.__main__": 8,
}
# Every file name of the run folder; spelled only in gdrun/rundir/layout.py.
RUN_FOLDER_NAMES = {
    "summary.json",
    "iterations.csv",
    "epochs.csv",
    "params.csv",
    "data.csv",
    "fit.csv",
    "model.pt",
    "gdrun.log",
    ".hydra",
    "checkpoints",
    "last.pt",
    "best.pt",
    "summary.csv",
    "classes.csv",
    "best.json",
    "best_model.pt",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1]) if parts[-1] == "__init__" and len(parts) > 1 else ".".join(parts)


def exists(module: str) -> bool:
    path = PACKAGE.parent.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports(path: Path) -> Set[str]:
    """The gdrun modules a file imports, at its top or inside functions (a lazy import is still a dependency)."""
    found: Set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("gdrun")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gdrun"):
            for alias in node.names:  # `from gdrun.plots import style` imports the module gdrun.plots.style
                sub = f"{node.module}.{alias.name}"
                found.add(sub if exists(sub) else node.module)
    return found


def graph() -> Dict[str, Set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in imports(path) if m != name} for name, path in modules.items()}


def layer(module: str) -> int:
    key = max((k for k in LAYERS if module == k or module.startswith(k + ".")), key=len, default=None)
    if key is None and module == "gdrun":
        return LAYERS["gdrun.__init__"]
    assert key is not None, f"{module} belongs to no layer: add it to LAYERS"
    return LAYERS[key]


def test_no_import_cycle_between_gdrun_modules():
    edges = graph()
    cycles = []
    state: Dict[str, int] = {}  # 1 on the stack, 2 done

    def visit(node: str, stack: list) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, set())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt) :] + [nxt]))
            elif state.get(nxt) is None and nxt in edges:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for name in sorted(edges):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_imports_point_down_the_layers():
    wrong = [
        f"{src} (layer {layer(src)}) imports {dst} (layer {layer(dst)})"
        for src, targets in graph().items()
        for dst in targets
        if layer(dst) > layer(src)
    ]
    assert not wrong, "\n".join(wrong)


def test_nothing_imports_the_commands():
    users = [
        src
        for src, targets in graph().items()
        if not src.startswith("gdrun.commands")
        and src != "gdrun.__main__"
        and any(t.startswith("gdrun.commands") for t in targets)
    ]
    assert not users


def test_only_the_layout_module_spells_the_run_folder_file_names():
    spelled = []
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).as_posix() == "rundir/layout.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
                if text in RUN_FOLDER_NAMES or any(text.endswith("/" + name) for name in RUN_FOLDER_NAMES):
                    spelled.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {text!r}")
    assert not spelled, "\n".join(spelled)


def test_few_modules_at_the_top_and_sub_packages_for_the_layers():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 8, top
    packages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
    assert packages == ["commands", "config", "labs", "plots", "rundir", "training"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "module",
    [
        "gdrun",
        "gdrun.config.schema",
        "gdrun.rundir.reader",
        "gdrun.sweeps",
        "gdrun.commands.gdrun",
        "gdrun.commands.report",
        "gdrun.commands.runs",
    ],
)
def test_light_modules_do_not_import_torch(module):
    import subprocess
    import sys

    code = f"import sys, {module}; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0, f"{module} imports torch"


def test_no_noqa_without_a_reason():
    bare = [
        f"{path}:{i}"
        for path in [*PACKAGE.rglob("*.py"), *PACKAGE.parent.joinpath("tests").glob("*.py")]
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if "# noqa" in line and " - " not in line.split("# noqa", 1)[1]
    ]
    assert not bare, bare

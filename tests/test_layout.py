"""The package's layout: the root holds only the base, and every import runs downward.

The wings, top to bottom: ``cli -> analysis -> study -> explorer -> train -> config -> fractals ->
base`` (``errors``, ``files``, ``seeds``). A module may import its own wing and any wing below it,
at module level or inside a function; nothing imports upward.
"""

import ast
from pathlib import Path

import ofdb_study

PACKAGE = Path(ofdb_study.__file__).resolve().parent
ORDER = ("base", "fractals", "config", "train", "explorer", "study", "analysis", "cli")
BASE = {"errors", "files", "seeds"}


def _wing(module: str) -> str:
    """``ofdb_study.train.engine`` -> ``train``; a root module or the package itself -> ``base``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ORDER else "base"


def _imports(path: Path, module: str):
    """(line, absolute module) of every ofdb_study import in ``path``."""
    is_pkg = path.name == "__init__.py"
    here = module.split(".") if is_pkg else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "ofdb_study" or target.startswith("ofdb_study."):
                names = [a.name for a in node.names]
                # ``from ofdb_study import study`` names a wing: judge by it
                yield from (
                    (node.lineno, f"{target}.{n}" if target == "ofdb_study" else target) for n in names
                )
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("ofdb_study"):
                    yield node.lineno, a.name


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(rel.parts).removesuffix(".__init__")
        yield path, module


def test_root_holds_only_the_base():
    root = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__"}
    assert root == BASE
    wings = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert wings == set(ORDER) - {"base"}


def test_every_import_runs_downward():
    upward = []
    for path, module in _modules():
        if module == "ofdb_study.__main__":
            continue  # the entry point runs the command line
        mine = ORDER.index(_wing(module))
        for line, target in _imports(path, module):
            if ORDER.index(_wing(target)) > mine:
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {target}")
    assert upward == []


def test_the_checker_sees_an_upward_import(tmp_path):
    fake = tmp_path / "engine.py"
    fake.write_text("from ..analysis import claims\n\ndef f():\n    from ofdb_study.cli import main\n")
    found = [t for _, t in _imports(fake, "ofdb_study.train.engine")]
    assert found == ["ofdb_study.analysis", "ofdb_study.cli"]
    assert all(ORDER.index(_wing(t)) > ORDER.index("train") for t in found)

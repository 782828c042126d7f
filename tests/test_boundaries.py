"""The tools meet only through each other's public API, so each can change its internals freely.

Every import in a package's source of another er tool must be one of: er_core (the shared wire
protocol and helpers, any module); er_models from er-train and er-eval (the design's
train -> models and eval -> models: they build and run its networks); the package root of a
tool (its lazy public names); or a module that tool documents as public (PUBLIC below). So a
trainer reaching into er-features' registry or cache, or a scorer into er-data's internals,
fails here, naming the file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ["er_data", "er_features", "er_models", "er_train", "er_eval"]
# modules documented as public API besides the package roots
PUBLIC = {"er_features.tuning"}
# tool -> tools whose internals it may import (the design's dependency arrows)
INTERNALS = {"er_train": {"er_models"}, "er_eval": {"er_models"}}


def imported(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import in the file."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
    return out


def violations(package: str, src: Path, root: Path = ROOT) -> list[str]:
    bad = []
    for path in sorted(src.rglob("*.py")):
        for line, module in imported(path):
            top = module.split(".")[0]
            if top not in TOOLS or top == package:
                continue
            if module == top or module in PUBLIC or top in INTERNALS.get(package, set()):
                continue
            bad.append(f"{path.relative_to(root)}:{line} imports {module}")
    return bad


def test_tools_use_each_others_public_api_only():
    found = []
    for package in TOOLS:
        src = ROOT / "packages" / package.replace("_", "-") / "src" / package
        assert src.is_dir(), src
        found += violations(package, src)
    assert not found, "\n".join(found)


def test_the_check_names_a_reach_into_internals(tmp_path):
    src = tmp_path / "er_train"
    src.mkdir()
    (src / "tower.py").write_text(
        "from er_features import text_model\n"
        "from er_features.tuning import pool\n"
        "from er_models.layout import Groups\n"
        "import er_features.registry\n"
        "from er_data.check import check_table\n"
    )
    got = violations("er_train", src, tmp_path)
    assert got == [
        "er_train/tower.py:4 imports er_features.registry",
        "er_train/tower.py:5 imports er_data.check",
    ]

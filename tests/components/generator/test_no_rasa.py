"""components/generator/ never imports Rasa, so it can be tested, benchmarked and reused alone."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

GENERATOR = Path(__file__).resolve().parents[3] / "components" / "generator"
MODULES = sorted(p for p in GENERATOR.glob("*.py"))


def imported_names(path: Path) -> set:
    """Top-level package of every import in the file, at any depth (lazy imports too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_there_are_generator_modules():
    assert len(MODULES) >= 8


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_generator_module_imports_rasa_or_rasa_sdk(path):
    assert not imported_names(path) & {"rasa", "rasa_sdk", "actions"}


def test_importing_every_generator_module_loads_no_rasa():
    names = [f"components.generator.{p.stem}" for p in MODULES if p.stem != "__init__"]
    code = ("import importlib, sys\n"
            f"for name in {names!r}: importlib.import_module(name)\n"
            "print(sorted(m for m in sys.modules if m == 'rasa' or m.startswith('rasa.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=GENERATOR.parents[1])
    assert out.stdout.strip().splitlines()[-1] == "[]"

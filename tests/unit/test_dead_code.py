"""No dead rooms: every public top-level function, class and constant of the package is used by
the package itself, the workflow (rules, scripts) or the benchmarks. Code that only its own tests
call is dead weight that still has to be read, kept in step and trusted."""

import ast
import re
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "src" / "intraneuron"

# Entry points kept for tests on purpose, each with why.
TEST_SUPPORT = {
    "synthetic_shard": "planted-effect shards: the analysis tests' and benchmarks' ground truth",
    "shell_shard": "planted smooth-map shards for the verdict tests' false-positive controls",
    "readout_shard": "planted linear read-out shards for the verdict tests' controls",
    "adjusted_mutual_information": "AMI of two labellings: checks the vectorised AMIScale",
    "required_n": "the sample-size rule behind config/config.yaml's ablation.neurons (tested)",
}


def public_names(source: str) -> list[tuple[str, int]]:
    """(name, line) of a module's public top-level functions, classes and assigned constants."""
    found = []
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            found.append((node.name, node.lineno))
        elif isinstance(node, ast.Assign):
            found += [(t.id, node.lineno) for t in node.targets if isinstance(t, ast.Name)]
    return [(name, line) for name, line in found if not name.startswith("_")]


def user_texts(root: Path) -> list[str]:
    """Where a name counts as used: the package, the workflow and the benchmarks (not tests)."""
    paths = [*root.glob("src/**/*.py"), *root.glob("workflow/**/*.py"),
             *root.glob("workflow/**/*.smk"), *root.glob("benchmarks/**/*.py"),
             root / "Snakefile", root / "workflow" / "Snakefile"]
    return [p.read_text(encoding="utf-8") for p in paths if p.is_file()]


def unused(root: Path) -> list[str]:
    """Public names whose only mention outside tests is their own definition."""
    words = Counter(word for text in user_texts(root) for word in re.findall(r"\w+", text))
    return [f"{module.relative_to(root)}:{line} {name}"
            for module in sorted((root / "src" / "intraneuron").rglob("*.py"))
            for name, line in public_names(module.read_text(encoding="utf-8"))
            if words[name] <= 1]


def test_every_public_name_of_the_package_is_used_outside_its_tests():
    dead = [entry for entry in unused(REPO) if entry.split()[-1] not in TEST_SUPPORT]
    assert dead == [], "used only by tests (delete them with their tests, or say why in " \
                       f"TEST_SUPPORT): {dead}"


def test_the_check_finds_a_planted_dead_function(tmp_path):
    package = tmp_path / "src" / "intraneuron"
    package.mkdir(parents=True)
    (package / "used.py").write_text("def helper():\n    pass\n\n\nLIMIT = 3\n")
    (package / "caller.py").write_text("from .used import helper\n\nhelper()\n")
    assert unused(tmp_path) == ["src/intraneuron/used.py:5 LIMIT"]
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "bench.py").write_text("from intraneuron.used import LIMIT\n")
    assert unused(tmp_path) == []


def test_kept_test_support_exists():
    """An entry for a name that is gone is stale: remove it."""
    names = {name for module in PACKAGE.rglob("*.py")
             for name, _ in public_names(module.read_text(encoding="utf-8"))}
    assert set(TEST_SUPPORT) <= names, sorted(set(TEST_SUPPORT) - names)

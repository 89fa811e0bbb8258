"""The places that pin dependencies agree, the jobs' environments are usable where Snakemake
deploys them (the light one holds everything its jobs import, and no torch), and the config
reference is up to date."""

import ast
import json
import re
import subprocess
import sys
import textwrap
from functools import cache
from pathlib import Path

import pytest
import yaml

from intraneuron.config import schema_markdown

REPO = Path(__file__).resolve().parents[2]
ENVS = REPO / "workflow" / "envs"
RULE_ENVS = sorted(ENVS.glob("*.yaml"))
MODEL_ENV, LIGHT_ENV = ENVS / "model.yaml", ENVS / "analysis.yaml"
SRC = REPO / "src"
# Tools for tests, lint and cluster submission: in requirements.txt, never in a job's environment.
# fastapi, uvicorn, starlette, openai: transformers[serving], the server of tests/unit/test_labels_server.py.
NOT_FOR_JOBS = {"pytest", "pytest-xdist", "ruff", "snakefmt", "selenium", "snakemake-executor-plugin-slurm",
                "fastapi", "uvicorn", "starlette", "openai"}


def pip_pins(lines):
    return sorted(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def conda_pins(path):
    deps = yaml.safe_load(path.read_text())["dependencies"]
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    return pip_pins(pip)


def requirements():
    return pip_pins((REPO / "requirements.txt").read_text().splitlines())


def name(pin):
    return pin.split("==")[0].lower()


def test_pins_agree():
    reqs = requirements()
    assert all("==" in r for r in reqs), "every requirement is pinned"
    assert conda_pins(REPO / "environment.yaml") == reqs
    assert "torch==2.13.0" in reqs


def runtime_pins():
    return [r for r in requirements() if name(r) not in NOT_FOR_JOBS]


@pytest.mark.parametrize("env", RULE_ENVS, ids=lambda p: p.name)
def test_rule_environments_hold_runtime_pins_only(env):
    pins = conda_pins(env)
    # Snakemake deploys a copy of this file under .snakemake/conda/: a relative path to the
    # package (`-e ../..`) would point elsewhere; workflow/Snakefile provides the package instead.
    assert not [p for p in pins if not re.fullmatch(r"[A-Za-z0-9_.\-]+==[A-Za-z0-9_.+\-]+", p)]
    assert not {name(p) for p in pins} & NOT_FOR_JOBS
    assert set(pins) <= set(runtime_pins())


def test_model_environment_is_the_runtime_and_the_light_one_has_no_torch():
    assert conda_pins(MODEL_ENV) == runtime_pins()
    light = {name(p) for p in conda_pins(LIGHT_ENV)}
    assert "torch" not in light and "transformers" not in light
    assert {"numpy", "pandas", "snakemake"} <= light  # a job's script needs Snakemake's object


def test_every_rule_environment_exists():
    used = {}
    for rules in (REPO / "workflow" / "rules").glob("*.smk"):
        for env in re.findall(r"conda:\s*\n\s*\"([^\"]+)\"", rules.read_text()):
            used[f"{rules.name}: {env}"] = (rules.parent / env).resolve()
    assert used, "the rules name their conda environments"
    assert {k: v for k, v in used.items() if v not in RULE_ENVS} == {}


def test_config_reference_is_generated_from_schema():
    assert (REPO / "config" / "README.md").read_text() == schema_markdown(), (
        "config/README.md is stale: python -m intraneuron.config --markdown > config/README.md")


# ------------------------------------------------------------------ the light environment's jobs


def rule_blocks():
    """{rule: (its conda environment, its script)} from the rule files."""
    found = {}
    for rules in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        for block in re.split(r"^(?=rule \w+:)", rules.read_text(), flags=re.M)[1:]:
            rule = re.match(r"rule (\w+):", block).group(1)
            env = re.search(r"conda:\s*\n\s*\"([^\"]+)\"", block)
            script = re.search(r"script:\s*\n\s*\"([^\"]+)\"", block)
            if script:
                found[rule] = ((rules.parent / env.group(1)).resolve() if env else None,
                               (rules.parent / script.group(1)).resolve())
    return found


RULES = rule_blocks()
LIGHT_RULES = sorted(r for r, (env, _) in RULES.items() if env == LIGHT_ENV)


def module_path(module: str) -> Path | None:
    base = SRC.joinpath(*module.split("."))
    return next((p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()), None)


def absolute(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module
    parts = module.split(".")
    if module_path(module).name != "__init__.py":
        parts = parts[:-1]
    parts = parts[:len(parts) - node.level + 1]
    return ".".join(parts + ([node.module] if node.module else []))


@cache
def definitions(module: str) -> tuple[dict, dict]:
    """A package module's top-level functions and classes, and its names imported from elsewhere."""
    tree = ast.parse(module_path(module).read_text(encoding="utf-8"))
    defs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    imported = {alias.asname or alias.name: (absolute(module, n), alias.name)
                for n in tree.body if isinstance(n, ast.ImportFrom) for alias in n.names}
    return defs, imported


def optional_imports(node: ast.AST) -> set[int]:
    """The import statements under a `try` that catches ImportError: a missing module is allowed."""
    guarded = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Try) and any(
                isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
                for h in sub.handlers):
            guarded.update(id(n) for stmt in sub.body for n in ast.walk(stmt))
    return guarded


def imports_in(node: ast.AST, module: str, seen: set, modules: dict) -> None:
    """Every module imported in `node`'s body, following the package's own functions it uses:
    the imports a job makes when it calls them, deferred ones included. `modules` maps each to
    whether it is optional."""
    optional = optional_imports(node)
    for sub in ast.walk(node):
        if isinstance(sub, ast.Import):
            for alias in sub.names:
                modules[alias.name] = modules.get(alias.name, True) and id(sub) in optional
        elif isinstance(sub, ast.ImportFrom):
            source = absolute(module, sub) if module else sub.module
            modules[source] = modules.get(source, True) and id(sub) in optional
            for alias in sub.names:
                follow(source, alias.name, seen, modules)
        elif isinstance(sub, ast.Name) and module:
            defs, imported = definitions(module)
            if sub.id in defs:
                follow(module, sub.id, seen, modules)
            elif sub.id in imported:
                follow(*imported[sub.id], seen, modules)


def follow(module: str, attr: str, seen: set, modules: set) -> None:
    if not module.startswith("intraneuron") or (module, attr) in seen:
        return
    seen.add((module, attr))
    if module_path(f"{module}.{attr}"):
        modules.setdefault(f"{module}.{attr}", False)
    elif module_path(module):
        defs, imported = definitions(module)
        if attr in defs:
            imports_in(defs[attr], module, seen, modules)
        elif attr in imported:
            follow(*imported[attr], seen, modules)


def script_imports(script: Path) -> dict[str, bool]:
    """{module: optional} for what the job running `script` imports."""
    modules: dict[str, bool] = {}
    imports_in(ast.parse(script.read_text(encoding="utf-8")), "", set(), modules)
    return dict(sorted(modules.items()))


def absent_from_light_env() -> list[str]:
    """Top-level modules of the distributions model.yaml installs and analysis.yaml does not."""
    missing = {name(p) for p in conda_pins(MODEL_ENV)} - {name(p) for p in conda_pins(LIGHT_ENV)}
    from importlib.metadata import packages_distributions

    normal = {d.lower().replace("_", "-") for d in missing}
    return sorted(top for top, dists in packages_distributions().items()
                  if any(d.lower().replace("_", "-") in normal for d in dists))


# Imports the modules with the model stack hidden, as in analysis.yaml; reports which hidden
# modules were asked for (an optional import may catch the error) and which imports failed.
PROBE = textwrap.dedent("""
    import importlib, json, sys
    hidden, modules = json.loads(sys.argv[1])
    asked = []
    class Hide:
        def find_spec(self, fullname, path=None, target=None):
            if fullname.split(".")[0] in hidden:
                asked.append(fullname)
                raise ModuleNotFoundError(f"{fullname} is not in analysis.yaml", name=fullname)
    sys.meta_path.insert(0, Hide())
    failed = {}
    for module, optional in modules.items():
        try:
            importlib.import_module(module)
        except ImportError as exc:
            if not optional:
                failed[module] = str(exc)
    print(json.dumps({"asked": sorted(set(asked)), "failed": failed,
                      "torch": "torch" in sys.modules}))
""")


def probe(script: Path) -> dict:
    args = json.dumps([absent_from_light_env(), script_imports(script)])
    proc = subprocess.run([sys.executable, "-c", PROBE, args], capture_output=True, text=True,
                          env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def test_the_light_environment_serves_the_analysis_merge_and_report_stages():
    assert {"analyze", "merge", "robustness"} <= set(LIGHT_RULES)
    assert {RULES[r][1].name for r in LIGHT_RULES} >= {"overview.py", "report_model.py"}
    assert all(env in (MODEL_ENV, LIGHT_ENV) for env, _ in RULES.values()), RULES


def test_the_probe_catches_a_job_that_needs_torch():
    """The planted case: extraction's script, whose job calls torch, fails the probe."""
    extract = probe(REPO / "workflow" / "scripts" / "extract.py")
    assert "torch" in extract["asked"] and extract["failed"]


@pytest.mark.parametrize("rule", LIGHT_RULES)
def test_light_jobs_import_nothing_the_light_environment_lacks(rule):
    """What the job's script imports, with what the functions it calls import when they run, is
    importable from analysis.yaml's packages, and torch is never even asked for."""
    found = probe(RULES[rule][1])
    assert found["failed"] == {} and not found["torch"]
    assert not [m for m in found["asked"] if m.split(".")[0] in ("torch", "functorch")]

"""The report is a pipeline of stages (spec → records → judge → present → build): a module imports
only its own stage and earlier ones, so no stage is imported back by an earlier one."""

from __future__ import annotations

import ast
import subprocess

from tests.support import PYTHON, REPO

REPORT = REPO / "src" / "ablate" / "report"
STAGES = ("spec", "records", "judge", "present")


def _stage(module: str) -> int:
    """0..3 for a stage's modules, 4 for the orchestrator (build, __main__, the package itself)."""
    parts = module.split(".")
    return STAGES.index(parts[2]) if len(parts) > 2 and parts[2] in STAGES else len(STAGES)


def _imports(path) -> list[str]:
    """Every ablate.report module ``path`` imports, at module level or inside a function."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ablate.report"):
            found.append(node.module)
            found += [f"{node.module}.{a.name}" for a in node.names if (REPORT / node.module.split(".", 2)[-1].replace(".", "/") / a.name).exists()
                      or (REPORT / node.module.split(".", 2)[-1].replace(".", "/") / f"{a.name}.py").exists()]
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("ablate.report")]
    return found


def test_each_stage_imports_only_earlier_stages():
    modules = sorted(REPORT.rglob("*.py"))
    assert len(modules) > 20
    wrong = []
    for path in modules:
        name = "ablate." + ".".join(path.relative_to(REPORT.parent).with_suffix("").parts)
        for target in _imports(path):
            if target == "ablate.report":  # the package's lazy exports: only the orchestrator may use them
                if _stage(name) < len(STAGES):
                    wrong.append(f"{name} imports ablate.report")
            elif _stage(target) > _stage(name):
                wrong.append(f"{name} ({STAGES[_stage(name)]}) imports {target}")
    assert wrong == []


def test_the_claim_schema_needs_no_statistics_pandas_or_torch():
    """The config check and the sweeper parse claims before any run: spec/ stays light."""
    code = ("import sys\nfrom ablate.report.spec import parse_claim\n"
            "parse_claim({'statement': 's', 'checks': [{'metric': 'test/acc', 'goal': 'max', 'factor': 'a',"
            " 'treatment': 1, 'baseline': 0}]})\n"
            "print(sorted(m for m in ('torch', 'pandas', 'scipy', 'statsmodels', 'lightning') if m in sys.modules))")
    out = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"

"""``python -m ablate.new DIR``: the project it writes (outside the repository), the refusal of a
folder that is not empty, and the project's own claim run at budget=smoke as the printed command says."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support import VERDICTS, run_ablate, subprocess_env

FILES = ("README.md", "mymodel.py", "mydata.py", "conf/model/mynet.yaml", "conf/data/mydata.yaml",
         "conf/experiment/my_claim.yaml")
CLAIM_COMMAND = "PYTHONPATH=. python -m ablate --config-dir conf +experiment=my_claim model=mynet data=mydata budget=smoke"


def new(target: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_ablate([target], cwd=cwd, module="ablate.new", timeout=120)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """A project written by ``python -m ablate.new proj`` in a temporary folder (outside the repository)."""
    root = tmp_path_factory.mktemp("new")
    proc = new(Path("proj"), cwd=root)
    return root / "proj", proc


def test_new_writes_the_project_and_prints_the_commands(project):
    folder, proc = project
    assert proc.returncode == 0, proc.stderr
    assert sorted(snapshot(folder)) == sorted(FILES)
    for name in FILES:
        assert name in proc.stdout, name
    assert "cd proj" in proc.stdout
    assert CLAIM_COMMAND in proc.stdout
    assert "PYTHONPATH=. python -m ablate.catalogue --config-dir conf model=mynet data=mydata budget=smoke" in proc.stdout
    assert CLAIM_COMMAND in (folder / "README.md").read_text()


def test_new_fills_an_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = new(Path("empty"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(snapshot(tmp_path / "empty")) == sorted(FILES)


@pytest.mark.parametrize("kind", ["folder", "file"])
def test_new_refuses_what_exists_and_changes_nothing(tmp_path, kind):
    target = tmp_path / "mine"
    if kind == "folder":
        (target / "conf" / "model").mkdir(parents=True)
        (target / "mymodel.py").write_text("# my own work, not a template\n")
        (target / "conf" / "model" / "mynet.yaml").write_text("_target_: elsewhere.Net\n")
    else:
        target.write_text("a file, not a folder\n")
    before = snapshot(tmp_path)
    proc = new(Path("mine"), cwd=tmp_path)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stderr.startswith("ablate.new: mine exists and is not "), proc.stderr
    assert "nothing was written" in proc.stderr
    assert snapshot(tmp_path) == before


def load(path: Path):
    """The module at ``path``, under a name of its own (the project's module names stay out of sys.modules)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"_ablate_new_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_template_is_a_valid_claim_model_and_data(project):
    """In-process, in seconds: the claim passes the schema, the model meets the contract on the data."""
    import torch

    from ablate.report.spec.claim import parse_claim

    folder, _ = project
    spec = yaml.safe_load((folder / "conf" / "experiment" / "my_claim.yaml").read_text())
    claim, errors = parse_claim(spec["claim"])
    assert errors == [] and len(claim.checks) == 2 and not any(c.problems for c in claim.checks)
    mydata, mymodel = load(folder / "mydata.py"), load(folder / "mymodel.py")
    x, y = mydata.spirals(num_samples=50, seed=1)
    assert x.shape == (50, 8) and set(y) <= {0, 1, 2}
    net = mymodel.ResidualMLP(input_shape=(8,), num_classes=3, depth=3, residual=False)
    assert net(torch.as_tensor(x[:4])).shape == (4, 3)


def test_the_project_claim_runs_at_smoke(project):
    """The claim command as printed, run in the project folder: the sweep ends with a report that
    judges the project's own claim, its scope naming the project's model and data."""
    folder, _ = project
    args = CLAIM_COMMAND.split(" -m ablate ", 1)[1].split()
    proc = run_ablate(args, cwd=folder, env=subprocess_env(PYTHONPATH="."))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (sweep,) = (folder / "reports" / "my_claim").iterdir()
    report = (sweep / "report.md").read_text()
    assert "# ablate report: my_claim" in report and "(`skips_help_deep`)" in report and "(`depth_is_free`)" in report
    assert (sweep / "report.html").is_file() and sorted((sweep / "figures").glob("*.png"))
    verdict = json.loads((sweep / "verdict.json").read_text())
    assert verdict["status"]["failed"] == 0 and verdict["runs"] >= 8
    (claim,) = verdict["claims"]
    assert claim["name"] == "my_claim"
    assert "mymodel.ResidualMLP" in claim["scope"]["model"] and "mydata.spirals" in claim["scope"]["data"]
    assert [c["name"] for c in claim["clauses"]] == ["skips_help_deep", "depth_is_free"]
    judged = [v.strip("*") for v in VERDICTS[:-1]]          # judged: any verdict but "not tested"
    for check in claim["checks"]:
        assert any(check["verdict"].startswith(v) for v in judged), check["verdict"]
        assert check["n"]["treatment"] >= 2 and check["n"]["baseline"] >= 2

"""A non-editable build ships the Hydra configs: build a wheel from a copy of the project, check its
contents, then run `python -m ablate` from the unpacked wheel, outside the repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.support import PYTHON, REPO

IGNORE = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", "outputs",
                                "multirun", "wandb", "lightning_logs", "*.ckpt", ".venv")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the project (building in place would write build/ and egg-info
    into the working tree)."""
    root = tmp_path_factory.mktemp("packaging")
    project = root / "project"
    shutil.copytree(REPO, project, ignore=IGNORE)
    out = root / "wheels"
    base = [PYTHON, "-m", "pip", "wheel", "--no-deps", "--no-index", "-w", str(out), str(project)]
    result = subprocess.run([*base[:4], "--no-build-isolation", *base[4:]], capture_output=True, text=True,
                            timeout=300)
    if result.returncode != 0:  # no setuptools in this environment: let pip fetch the build backend
        result = subprocess.run([arg for arg in base if arg != "--no-index"], capture_output=True, text=True,
                                timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    (path,) = out.glob("ablate-*.whl")
    return path


@pytest.fixture(scope="module")
def unpacked(wheel, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(target)
    return target


def _names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as zf:
        return set(zf.namelist())


def test_wheel_ships_every_config(wheel):
    names = _names(wheel)
    for required in ("ablate/conf/__init__.py", "ablate/conf/config.yaml", "ablate/conf/model/resnet.yaml",
                     "ablate/conf/activation/relu.yaml", "ablate/conf/budget/smoke.yaml"):
        assert required in names, required
    source = {f"ablate/conf/{p.relative_to(REPO / 'conf').as_posix()}" for p in (REPO / "conf").rglob("*.yaml")}
    assert source, "no configs found under conf/"
    assert source <= names, f"configs missing from the wheel: {sorted(source - names)}"
    experiments = {n for n in source if n.startswith("ablate/conf/experiment/")}
    assert experiments <= names


def test_wheel_ships_every_module(wheel):
    names = _names(wheel)
    source = {f"ablate/{p.relative_to(REPO / 'src' / 'ablate').as_posix()}"
              for p in (REPO / "src" / "ablate").rglob("*.py") if "__pycache__" not in p.parts}
    assert source <= names, f"modules missing from the wheel: {sorted(source - names)}"
    assert not any(n.startswith(("tests/", "conf/", "src/")) for n in names)
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    with zipfile.ZipFile(wheel) as zf:
        assert "ablate = ablate.__main__:main" in zf.read(entry_points).decode()


def _run_from(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    # PYTHONPATH entries come before site-packages, and the editable install's finder is appended to
    # sys.meta_path after the path finder, so the unpacked copy wins; the first test proves it.
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONNOUSERSITE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([PYTHON, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180)


def test_unpacked_wheel_runs_outside_the_repo(unpacked, tmp_path):
    where = _run_from(unpacked, tmp_path, "-c", "import ablate, ablate.conf, ablate.run; "
                      "print(ablate.__file__); print(ablate.conf.__file__); print(ablate.run.__file__)")
    assert where.returncode == 0, where.stderr
    for line in where.stdout.split():
        assert Path(line).is_relative_to(unpacked), f"{line} is not the wheel's copy"
        assert not Path(line).is_relative_to(REPO)

    result = _run_from(unpacked, tmp_path, "-m", "ablate", "--cfg", "job", "budget=smoke", "model=resnet",
                       "hydra.run.dir=" + str(tmp_path / "never"))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "_target_: ablate.models.ResNet" in out
    assert "max_epochs: 2" in out and "num_samples: 600" in out
    assert "_target_: ablate.data.sources.mnist1d" in out
    assert not (tmp_path / "never").exists()           # --cfg prints and runs nothing
    assert os.listdir(tmp_path) == []

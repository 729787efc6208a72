"""``python -m ablate.report``: exit codes, messages, and W&B failing fast before any work."""

from __future__ import annotations

import subprocess
import sys

from ablate.report.__main__ import main as cli_main
from tests.report.records import two_level_records, write_sweep
from tests.support import REPO


def test_cli_exit_codes(tmp_path, capsys, monkeypatch):
    root = write_sweep(tmp_path / "s", two_level_records(0.1, 1.0))
    assert cli_main([str(root), "--out", str(tmp_path / "out")]) == 0
    assert "verdict: supported" in capsys.readouterr().out
    assert (tmp_path / "out" / "report.html").exists()

    (tmp_path / "empty").mkdir()
    assert cli_main([str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no run records") and "Traceback" not in err
    assert cli_main([str(tmp_path / "missing")]) == 2

    # --wandb on runs that never logged to W&B: a clear message, nothing built.
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert cli_main([str(root), "--wandb", "--out", str(tmp_path / "w")]) == 2
    assert "did not log to W&B" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


def test_cli_wandb_offline_fails_fast(tmp_path, capsys, monkeypatch):
    records = two_level_records(0.1, 1.0)
    for r in records:
        r["wandb"] = {"entity": "me", "project": "ablate", "group": "toy-1", "id": r["run_id"]}
    root = write_sweep(tmp_path / "s", records)

    def no_network(*args, **kwargs):
        raise AssertionError("no network call may happen before the offline check")

    monkeypatch.setattr("socket.create_connection", no_network)
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert cli_main([str(root), "--wandb"]) == 2
    assert "WANDB_MODE=offline" in capsys.readouterr().err
    monkeypatch.delenv("WANDB_MODE")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setattr("ablate.report.present.wandb_report._api_key", lambda base_url: None)
    assert cli_main([str(root), "--wandb"]) == 2
    assert "no W&B API key" in capsys.readouterr().err


def test_python_dash_m_entry_point(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = subprocess.run([sys.executable, "-m", "ablate.report", str(tmp_path / "empty")],
                          capture_output=True, text=True, cwd=REPO, env={"PYTHONPATH": str(REPO / "src"),
                                                                          "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2, proc.stderr
    assert "no run records" in proc.stderr and "Traceback" not in proc.stderr

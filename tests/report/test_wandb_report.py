"""The W&B Report is built offline (the project lookup is stubbed) and publishing fails fast."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("wandb_workspaces", reason="wandb-workspaces is not installed (extra: wandb-report)")

from ablate.report.present import wandb_report as wbr  # noqa: E402
from ablate.report.judge.claim import judge_claim  # noqa: E402
from tests.report.records import RESIDUAL_CLAIM, make_record, residual_sweep_records, write_sweep  # noqa: E402

WANDB = {"entity": "ablate-lab", "project": "ablate", "group": "residual_depth-2026-01-01"}


def _records(**wandb):
    records = residual_sweep_records()
    for r in records:
        r["wandb"] = dict(WANDB, id=f"wb-{r['run_id']}", **wandb)
    return records


@pytest.fixture
def offline_project_lookup(monkeypatch):
    """wandb-workspaces resolves a runset's entity/project to an internal id with a GraphQL call
    (``interface.execute_graphql(_get_api(), gql.projectInternalId, ...)``) when the report is
    serialised; answer it locally, and fail on any other query."""
    from wandb_workspaces.reports.v2 import gql, interface

    calls = []

    def fake_execute(api, query, variables=None):
        assert query == gql.projectInternalId, "only the project lookup may be stubbed"
        calls.append(dict(variables))
        return {"project": {"internalId": "UHJvamVjdDox"}}

    monkeypatch.setattr(interface, "_get_api", lambda: object())
    monkeypatch.setattr(interface, "execute_graphql", fake_execute)
    return calls


def _spec(report) -> dict:
    model = report._to_model()
    return json.loads(model.spec.model_dump_json(by_alias=True, exclude_none=True))


def test_target_comes_from_the_records():
    target = wbr.wandb_target(_records())
    assert (target.entity, target.project, target.group) == ("ablate-lab", "ablate", "residual_depth-2026-01-01")
    assert len(target.run_ids) == 20


def test_target_falls_back_to_config_logger():
    records = residual_sweep_records()
    for r in records:
        r["config"]["logger"] = {"wandb": {"_target_": "lightning.pytorch.loggers.WandbLogger",
                                           "project": "p2", "entity": "e2", "group": "g2"}}
    target = wbr.wandb_target(records)
    assert (target.entity, target.project, target.group) == ("e2", "p2", "g2")


def test_runs_not_on_wandb_is_a_clear_error():
    with pytest.raises(wbr.WandbUnavailable, match="did not log to W&B"):
        wbr.wandb_target([make_record("x", {"model.a": True}, 0, {"train/loss": 1.0})])


def test_report_serialises_with_verdicts_panels_and_group_runset(offline_project_lookup):
    records = _records()
    claims = [judge_claim(records, RESIDUAL_CLAIM)]
    report = wbr.build_wandb_report(records, claims, sweep_label="reports/residual_depth/2026-01-01")
    assert (report.entity, report.project) == ("ablate-lab", "ablate")
    assert report.title == "ablate: residual_depth — supported"
    assert report.description.startswith("Residual connections")

    spec = _spec(report)
    assert offline_project_lookup == [{"entityName": "ablate-lab", "projectName": "ablate"}]
    text = json.dumps(spec)
    markdown = [b["content"] for b in spec["blocks"] if b["type"] == "markdown-block"]
    verdicts = next(m for m in markdown if "Claim: residual_depth" in m)
    assert "**supported**" in verdicts and "Welch t=" in verdicts and "n=3 each" in verdicts
    assert "(superiority)" in verdicts and "p against" in verdicts and "Holm" in verdicts
    assert "detectable |Δ| ≥" in verdicts
    assert "where model.depth=32 (max)" in verdicts
    assert any("1 diverged, 1 failed" in m for m in markdown)
    assert any("d32-plain-s3" in m and "loss became nan" in m for m in markdown)

    grid = next(b for b in spec["blocks"] if b["type"] == "panel-grid")
    runset = grid["metadata"]["runSets"][0]
    assert runset["project"] == {"name": "ablate", "entityName": "ablate-lab", "id": "UHJvamVjdDox"}
    assert runset["filters"]["filters"] == [{"key": {"section": "run", "name": "group"}, "op": "=",
                                             "value": "residual_depth-2026-01-01", "disabled": False}]
    assert [g["name"] for g in runset["grouping"]] == ["model.value.depth", "model.value.residual"]
    panels = grid["metadata"]["panelBankSectionConfig"]["panels"]
    lines = [p for p in panels if p["viewType"] == "Run History Line Plot"]
    assert ["train/loss"] in [p["config"]["metrics"] for p in lines]
    assert all(p["config"]["xAxis"] == "epoch" for p in lines)
    scatter = [p for p in panels if p["viewType"] == "Scatter Plot"]
    assert scatter and scatter[0]["config"]["xAxis"] == "config:model.value.depth"
    assert scatter[0]["config"]["yAxis"] == "summary:train/loss"
    assert "http" not in json.dumps(markdown)
    assert text  # serialisable end to end


def test_without_group_the_runset_lists_the_runs(offline_project_lookup):
    records = _records()
    for r in records:
        r["wandb"].pop("group")
    spec = _spec(wbr.build_wandb_report(records))
    runset = next(b for b in spec["blocks"] if b["type"] == "panel-grid")["metadata"]["runSets"][0]
    leaf = runset["filters"]["filters"][0]
    assert leaf["key"] == {"section": "run", "name": "name"} and leaf["op"] == "IN"
    assert len(leaf["value"]) == 20


def test_unknown_entity_is_a_clear_error():
    records = _records()
    for r in records:
        r["wandb"].pop("entity")
    with pytest.raises(wbr.WandbUnavailable, match="entity is unknown"):
        wbr.build_wandb_report(records)


def test_publish_fails_fast_offline_and_without_key(monkeypatch, offline_project_lookup):
    report = wbr.build_wandb_report(_records())

    def no_network(*args, **kwargs):
        raise AssertionError("network used before the checks")

    monkeypatch.setattr(wbr.socket, "create_connection", no_network)
    monkeypatch.setattr(type(report), "save", lambda self, **kw: no_network())
    monkeypatch.setenv("WANDB_MODE", "offline")
    with pytest.raises(wbr.WandbUnavailable, match="WANDB_MODE=offline"):
        wbr.publish(report)
    monkeypatch.delenv("WANDB_MODE")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setattr(wbr, "_api_key", lambda base_url: None)
    with pytest.raises(wbr.WandbUnavailable, match="no W&B API key"):
        wbr.publish(report)


def test_publish_reports_an_unreachable_server(monkeypatch, offline_project_lookup):
    report = wbr.build_wandb_report(_records())
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # the discard port: nothing listens

    def refused(*args, **kwargs):
        raise ConnectionRefusedError("connection refused")

    monkeypatch.setattr(wbr.socket, "create_connection", refused)
    with pytest.raises(wbr.WandbUnavailable, match="cannot reach the W&B server http://127.0.0.1:9"):
        wbr.publish(report, timeout=1)


def test_cli_publishes_after_writing_the_local_report(tmp_path, monkeypatch, capsys, offline_project_lookup):
    from ablate.report.__main__ import main

    root = write_sweep(tmp_path / "s", _records())
    published = []
    monkeypatch.setattr(wbr, "check_wandb_ready", lambda timeout=5.0: "https://api.wandb.ai")

    def fake_publish(report, **kwargs):
        published.append(_spec(report))
        return "https://wandb.ai/ablate-lab/ablate/reports/x"

    monkeypatch.setattr(wbr, "publish", fake_publish)
    assert main([str(root), "--wandb"]) == 0
    out = capsys.readouterr().out
    assert "W&B report published: https://wandb.ai/ablate-lab/ablate/reports/x" in out
    assert (root / "report.html").exists() and len(published) == 1

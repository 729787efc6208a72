"""The Speed probe, through real runs: training time as metrics, one member's samples per second
(the record's samples_per_s), seconds per epoch and milliseconds per optimizer step."""

from __future__ import annotations

import pytest

from ablate.results import read_record
from ablate.run import run_trial

SMOKE = ["budget=smoke", "logger=none", "+probes.speed._target_=ablate.probes.Speed"]


def test_speed_gives_samples_per_second_epoch_seconds_and_step_milliseconds(compose_cfg, tmp_path):
    run_trial(compose_cfg([*SMOKE, "trainer.max_epochs=2", "data.batch_size=64"], tmp_path / "run"))
    record = read_record(tmp_path / "run")
    assert record["status"] == "ok", record.get("error")
    m = record["metrics"]
    # its own clock over the same intervals as the record's Throughput
    assert m["speed/samples_per_s"] == pytest.approx(record["samples_per_s"], rel=0.05)
    steps = record["history"][-1]["step"]
    seconds = m["speed/epoch_s"] * 2
    assert m["speed/step_ms"] == pytest.approx(1000 * seconds / steps, rel=1e-6)
    # every training sample of both epochs (the last batch of an epoch may be short), over the same seconds
    samples = m["speed/samples_per_s"] * seconds
    assert (steps - 2) * 64 < samples <= steps * 64 + 1e-6


def test_speed_of_a_vectorized_member_is_per_member(compose_cfg, tmp_path):
    run_trial(compose_cfg([*SMOKE, "seeds=[0,1]"], tmp_path / "vectorized"))
    for seed in (0, 1):
        member = read_record(tmp_path / "vectorized" / f"seed={seed}")
        assert member["status"] == "ok"
        assert member["metrics"]["speed/samples_per_s"] == pytest.approx(member["samples_per_s"], rel=0.05)

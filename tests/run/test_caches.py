"""What a process keeps from one job for the next (to save time) must never carry one job's state into
another: one config copy for a job's members (ablate.run._MemberConfigs), the data sources' arrays
(ablate.data.sources). The sweeper's composed configs: tests/run/test_compose_cache.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from ablate.data import sources
from ablate.members import Member, member_config
from ablate.results import read_record
from ablate.run import _MemberConfigs, run_trial


@pytest.mark.parametrize("members", [
    [Member(0), Member(1), Member(2)],
    [Member(s, lr) for s in (0, 1) for lr in (0.1, 0.01)],
    [Member(s, None, wd) for s in (0, 1) for wd in (0.0, 1e-4)],
    [Member(0, 0.1), Member(1)],                          # mixed: a copy each
])
def test_member_configs_on_one_copy_are_each_members_own(compose_cfg, tmp_path, members):
    cfg = compose_cfg(["budget=smoke", "seeds=[0,1]", "lrs=[0.1,0.01]"])
    folders = [tmp_path / f"m{k}" for k in range(len(members))]
    configs = _MemberConfigs(cfg, members, folders)
    for k, (member, folder) in enumerate(zip(members, folders)):
        own = OmegaConf.to_container(configs[k], resolve=True)
        assert own == OmegaConf.to_container(member_config(cfg, member, folder), resolve=True)
    assert cfg.seeds == [0, 1] and cfg.lrs == [0.1, 0.01]          # the job's config is untouched


def test_cached_source_data_is_each_callers_own():
    first = sources.digits()
    first.x.mul_(0)                                   # a run that changed its data in place
    first.y.zero_()
    second = sources.digits()
    assert second.x.abs().sum() > 0 and second.y.max() == 9
    assert second.x.data_ptr() != first.x.data_ptr()
    a, b = sources.mnist1d(num_samples=300), sources.mnist1d(num_samples=400)
    assert (len(a.y), len(b.y)) == (300, 400)
    before = a.x.clone()
    a.x.add_(1.0)
    assert torch.equal(sources.mnist1d(num_samples=300).x, before)
    assert not torch.equal(sources.mnist1d(num_samples=300, seed=1).x, sources.mnist1d(num_samples=300).x)


def _trial(compose_cfg, folder: Path, *overrides: str) -> dict:
    cfg = compose_cfg(["budget=smoke", "budget.max_epochs=1", "logger=none", *overrides], run_dir=folder)
    run_trial(cfg)
    return read_record(folder)


def test_two_jobs_in_one_process_see_their_own_data_and_give_what_a_fresh_process_gives(compose_cfg, tmp_path):
    """A job after another job (different data, different seed) in the same process gives the very
    record it gives first in a fresh process: nothing kept between jobs leaked into it."""
    sources._digits_arrays.cache_clear()
    sources._mnist1d_arrays.cache_clear()
    alone = _trial(compose_cfg, tmp_path / "alone", "data=digits", "seed=1")
    other = _trial(compose_cfg, tmp_path / "other", "data.source.num_samples=400", "seed=2")
    other_digits = _trial(compose_cfg, tmp_path / "other_digits", "data=digits", "seed=2")
    after = _trial(compose_cfg, tmp_path / "after", "data=digits", "seed=1")
    assert alone["metrics"] == after["metrics"] and alone["history"] == after["history"]
    assert other["metrics"] != alone["metrics"] and other_digits["metrics"] != alone["metrics"]

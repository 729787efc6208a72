"""``ablate`` itself: the sweep job folder name (``job_id``) and the ``${scale:...}`` resolver the
experiments size their epochs with."""

from __future__ import annotations

import re

import pytest
from omegaconf import OmegaConf

from ablate import job_id, scale
from tests.support import compose


def test_job_id_is_a_short_stable_hash_of_the_overrides():
    first = job_id("model.depth=4,seed=0")
    assert re.fullmatch(r"[0-9a-f]{12}", first)
    assert job_id("model.depth=4,seed=0") == first                  # a relaunch finds the same folder
    assert job_id("model.depth=4,seed=1") != first


@pytest.mark.parametrize("value,factor,expected", [(20, 0.5, 10), (2, 0.5, 1), (2, 0.1, 1), (5, 0.5, 2), (7, 1, 7)])
def test_scale_is_the_rounded_share_and_at_least_one(value, factor, expected):
    assert scale(value, factor) == expected


def test_the_resolvers_are_registered_on_import():
    cfg = OmegaConf.create({"epochs": 20, "half": "${scale:${epochs},0.5}", "job": "${ablate_job_id:'seed=0'}"})
    assert cfg.half == 10 and cfg.job == job_id("seed=0")
    # an experiment's share of the smoke budget (2 epochs) stays at least one epoch
    assert compose(["+experiment=norm_bn_vs_ln", "budget=smoke"]).trainer.max_epochs == 1

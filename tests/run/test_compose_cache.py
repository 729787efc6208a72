"""The sweeper's composed configs (ablate.compose_cache): a job composed for the check is launched
as composing it again would give it, and no caller's changes reach another."""

from __future__ import annotations

import pickle

import pytest
from hydra import initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode
from omegaconf import OmegaConf, open_dict

from ablate.compose_cache import ComposeCache


@pytest.fixture
def loader():
    """Hydra's own config loader for ablate's configs, and a launching (sweep) config."""
    with initialize_config_module("ablate.conf", version_base="1.3"):
        hydra_loader = GlobalHydra.instance().config_loader()
        master = hydra_loader.load_configuration("config", ["budget=smoke"], RunMode.MULTIRUN)
        yield hydra_loader, master


def test_a_job_composed_for_the_check_is_launched_as_composing_it_again_would(loader):
    hydra_loader, master = loader
    cache = ComposeCache(hydra_loader)
    job = ["model=cnn", "seed=3"]
    checked = cache.load_sweep_config(master, job)
    with open_dict(checked):                   # what a caller does to its own copy stays there
        checked.seed = 99
        checked.hydra.job.num = 7
    launched = cache.load_sweep_config(master, job)
    fresh = hydra_loader.load_sweep_config(master, job)
    assert (cache.hits, cache.misses) == (1, 1)
    assert launched is not checked and launched.seed == 3
    assert OmegaConf.to_yaml(launched) == OmegaConf.to_yaml(fresh)
    # handed out once: a third ask composes again
    again = cache.load_sweep_config(master, job)
    assert (cache.hits, cache.misses) == (1, 2) and again is not launched and again.seed == 3


def test_different_jobs_get_their_own_configs(loader):
    hydra_loader, master = loader
    cache = ComposeCache(hydra_loader)
    first, second = (cache.load_sweep_config(master, job) for job in (["seed=1"], ["seed=2", "model=cnn"]))
    assert (first.seed, second.seed) == (1, 2)
    assert first.model._target_ != second.model._target_
    assert cache.hits == 0
    assert cache.load_sweep_config(master, ["seed=2", "model=cnn"]).seed == 2
    assert cache.load_sweep_config(master, ["seed=1"]).model._target_ == first.model._target_


def test_the_cache_is_bounded_and_a_pickled_copy_keeps_nothing(loader):
    hydra_loader, master = loader
    cache = ComposeCache(hydra_loader, max_entries=2)
    for seed in range(3):
        cache.load_sweep_config(master, [f"seed={seed}"])
    assert len(cache._kept) == 2
    cache.load_sweep_config(master, ["seed=0"])          # the oldest went: composed again
    assert (cache.hits, cache.misses) == (0, 4)
    copy = pickle.loads(pickle.dumps(cache))              # the joblib launcher sends the context to workers
    assert len(copy._kept) == 0 and copy.get_search_path() is not None

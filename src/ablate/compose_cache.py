"""One Hydra compose per sweep job instead of two.

The ablate sweeper composes every job of a sweep's first look to check it before anything runs
(:meth:`AblateSweeper.check`), and the launcher then composes each job again to run it (Hydra's
basic and joblib launchers both call ``config_loader.load_sweep_config(config, overrides)``). A
compose costs ~0.13 s of CPU here (YAML, OmegaConf merges), and a catalogue at ``budget=quick``
composes ~500 jobs. :class:`ComposeCache` is a :class:`hydra.core.config_loader.ConfigLoader` that
delegates everything to Hydra's own and remembers the last composes: a job composed for the check is
handed to the launcher without composing it again.

What the launcher gets is what composing again would give: a private copy taken when the config was
composed (nothing the check does to its own copy reaches it), with the launching config's resolver
cache copied in afterwards, as ``load_sweep_config`` does last. Each entry is handed out once and
forgotten; at most :data:`MAX_ENTRIES` are kept (the oldest go first), so a sweep larger than that
composes its early jobs twice, as before. A pickled copy (the joblib launcher sends the Hydra context
to its workers) keeps none.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Any, List, Optional

from hydra.core.config_loader import ConfigLoader
from hydra.core.config_search_path import ConfigSearchPath
from hydra.core.object_type import ObjectType
from hydra.plugins.config_source import ConfigSource
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

MAX_ENTRIES = 128      # ~0.3 MB each for ablate's configs


class ComposeCache(ConfigLoader):
    """Hydra's config loader ``loader``, whose :meth:`load_sweep_config` hands a job composed before
    (same launching config, same overrides) to the next caller instead of composing it again."""

    def __init__(self, loader: ConfigLoader, max_entries: int = MAX_ENTRIES):
        self.loader, self.max_entries = loader, max_entries
        self._kept: "OrderedDict[tuple, DictConfig]" = OrderedDict()
        self.hits = self.misses = 0

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: List[str]) -> DictConfig:
        key = (id(master_config), tuple(sweep_overrides))
        kept = self._kept.pop(key, None)
        if kept is not None:
            self.hits += 1
            OmegaConf.copy_cache(from_config=master_config, to_config=kept)
            return kept
        self.misses += 1
        config = self.loader.load_sweep_config(master_config, list(sweep_overrides))
        self._kept[key] = copy.deepcopy(config)
        while len(self._kept) > self.max_entries:
            self._kept.popitem(last=False)
        return config

    # -- the rest is Hydra's own ---------------------------------------------------------------------

    def load_configuration(self, config_name: Optional[str], overrides: List[str], run_mode: RunMode,
                           from_shell: bool = True, validate_sweep_overrides: bool = True) -> DictConfig:
        return self.loader.load_configuration(config_name, overrides, run_mode, from_shell=from_shell,
                                              validate_sweep_overrides=validate_sweep_overrides)

    def get_search_path(self) -> ConfigSearchPath:
        return self.loader.get_search_path()

    def get_sources(self) -> List[ConfigSource]:
        return self.loader.get_sources()

    def list_groups(self, parent_name: str) -> List[str]:
        return self.loader.list_groups(parent_name)

    def get_group_options(self, group_name: str, results_filter: Optional[ObjectType] = ObjectType.CONFIG,
                          config_name: Optional[str] = None, overrides: Optional[List[str]] = None) -> List[str]:
        return self.loader.get_group_options(group_name, results_filter, config_name, overrides)

    def compute_defaults_list(self, config_name: Optional[str], overrides: List[str], run_mode: RunMode) -> Any:
        return self.loader.compute_defaults_list(config_name, overrides, run_mode)

    def __getattr__(self, name: str) -> Any:     # anything else Hydra's loader has (its repository, ...)
        if name == "loader":                     # not set yet (unpickling)
            raise AttributeError(name)
        return getattr(self.loader, name)

    def __getstate__(self) -> dict:
        # the joblib launcher pickles the Hydra context for its workers: they get the loader, not the kept configs
        return {**self.__dict__, "_kept": OrderedDict()}

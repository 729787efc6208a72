"""``ablate.checkpointing.LocalCheckpointIO``: how ``last.ckpt`` reaches the disk (temp file and rename
for local folders, Lightning's own writer for URLs)."""

from __future__ import annotations

import io
import os

import fsspec
import pytest
import torch

import ablate.checkpointing
from ablate.checkpointing import LocalCheckpointIO


def test_a_local_checkpoint_is_written_whole_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "checkpoints" / "last.ckpt"                     # the folder does not exist yet
    LocalCheckpointIO().save_checkpoint({"epoch": 1, "w": torch.arange(3)}, path)
    LocalCheckpointIO().save_checkpoint({"epoch": 2, "w": torch.arange(4)}, path)
    state = torch.load(path, weights_only=True)
    assert state["epoch"] == 2 and torch.equal(state["w"], torch.arange(4))
    assert os.listdir(path.parent) == ["last.ckpt"]


def test_a_write_killed_midway_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    LocalCheckpointIO().save_checkpoint({"epoch": 1}, path)

    def killed(obj, f):
        f.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(ablate.checkpointing.torch, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        LocalCheckpointIO().save_checkpoint({"epoch": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"epoch": 1}
    assert os.listdir(tmp_path) == ["last.ckpt"]


def test_urls_and_storage_options_go_to_lightnings_writer():
    url = "memory://ablate-test-checkpointing/last.ckpt"
    LocalCheckpointIO().save_checkpoint({"epoch": 3}, url)
    with fsspec.open(url, "rb") as f:
        assert torch.load(io.BytesIO(f.read()), weights_only=True) == {"epoch": 3}
    fsspec.filesystem("memory").rm("/ablate-test-checkpointing", recursive=True)
    # Lightning's TorchCheckpointIO refuses storage_options: the call reached it
    with pytest.raises(TypeError, match="storage_options"):
        LocalCheckpointIO().save_checkpoint({"epoch": 3}, "/never/last.ckpt", storage_options={"anon": True})

"""The MLP family: every activation × norm trains a step; its parameter count; it reads every layout."""

from __future__ import annotations

import pytest

from ablate.models import MLP
from tests.models import LAYOUTS, build, check_forward_backward, check_reads, combos, count


@pytest.mark.parametrize("activation,norm", combos(MLP))
def test_forward_backward(activation, norm):
    check_forward_backward("mlp", activation, norm)


def test_default_parameter_count():
    model, _ = build("mlp")
    assert count(model) == (40 * 256 + 256) + 2 * (256 * 256 + 256) + 256 * 10 + 10


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_reads_every_layout(layout):
    """(F,) vectors (data=synthetic), (C, L) signals and (C, H, W) images: it flattens them."""
    check_reads("mlp", layout)

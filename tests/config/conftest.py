"""Fixtures of the configuration-layer tests."""

import pytest
from _config_helpers import FROZEN_PROJECT


@pytest.fixture
def project_text():
    return FROZEN_PROJECT.read_text()

"""Fixtures of the configuration-layer tests."""

import pytest
from _config_helpers import EXAMPLE_PROJECT


@pytest.fixture
def project_text():
    return EXAMPLE_PROJECT.read_text()

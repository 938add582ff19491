"""Fixtures of the chart tests."""

from __future__ import annotations

import pytest

from .chart import SCENARIOS, Rendered, render


@pytest.fixture(params=sorted(SCENARIOS), scope="session")
def rendered(request) -> Rendered:
    """The chart rendered with its defaults and with each ci/*-values.yaml."""
    return render(request.param)

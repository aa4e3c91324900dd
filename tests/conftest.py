"""Shared fixtures: tiny in-memory suites (fast) and the shipped suites (real data)."""
from __future__ import annotations

import pytest

from emafusion_core.data import Suite, load_builtin
from suite_support import tiny_tables


@pytest.fixture
def tiny_suite() -> Suite:
    return Suite.from_tables("tiny", *tiny_tables())


@pytest.fixture(scope="session")
def routerbench() -> Suite:
    return load_builtin("routerbench")


@pytest.fixture(scope="session")
def routellm() -> Suite:
    return load_builtin("routellm")

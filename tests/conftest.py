"""Shared fixtures: where the real corpora are, and a skip marker for tests that need them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("KERASLLM_DATA", REPO_ROOT.parent / "shared" / "data"))

requires_data = pytest.mark.skipif(
    not (DATA_DIR / "README.md").exists(),
    reason=f"real corpora not found at {DATA_DIR}: set KERASLLM_DATA to the shared data folder",
)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA_DIR

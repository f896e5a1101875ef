import os, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture
def run_store(tmp_path, monkeypatch):
    "Point the run store and the reports folder at a temporary directory."
    monkeypatch.setenv("FACTLAB_RUNS", str(tmp_path/"runs"))
    monkeypatch.setenv("FACTLAB_REPORTS", str(tmp_path/"reports"))
    return tmp_path


def data_available() -> bool:
    return bool(os.environ.get("FACTLAB_DATA")) and Path(os.environ["FACTLAB_DATA"]).is_dir()

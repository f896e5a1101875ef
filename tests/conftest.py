import os, sys
from pathlib import Path

import nbformat
import pytest
import yaml

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


def toy_notebook(path:Path, body:str, params:str='out_dir: str = "."\nn: int = 3') -> Path:
    "Write a small parameterised notebook: a `parameters` cell, then `body`."
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}, "language_info": {"name": "python"}}
    cell = nbformat.v4.new_code_cell(params); cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell(body)]
    path.parent.mkdir(parents=True, exist_ok=True); nbformat.write(nb, str(path)); return path


def toy_registry(d:Path, body:str, params:str, claims:list, profiles:dict) -> Path:
    "A toy experiment `nbs/experiments/toy.yaml` under `d`, its notebook beside it; returns the registry folder."
    reg = d/"nbs/experiments"
    toy_notebook(reg/"toy.ipynb", body, params)
    (reg/"toy.yaml").write_text(yaml.safe_dump(dict(claims=list(claims), profiles=profiles), sort_keys=False))
    return reg


# Tiers: `make test-fast` deselects `slow`, which marks whole modules that run experiments, SLURM or the browser, and
# any test that runs a notebook through the runner (it asks for a toy experiment or a run store).
SLOW_MODULES = {"test_experiments_smoke", "test_slurm", "test_shards", "test_resume", "test_docs"}
SLOW_FIXTURES = {"toy", "finished", "run_store"}

def pytest_collection_modifyitems(items):
    for item in items:
        if item.module.__name__ in SLOW_MODULES or SLOW_FIXTURES & set(item.fixturenames): item.add_marker(pytest.mark.slow)

"""Every library notebook's own examples and tests (nbdev-test), one pytest case per notebook.

The selected notebooks run up front, a few at a time (one per core, each with one torch thread): each nbdev-test
spends seconds starting Python and importing torch, which one at a time would leave a core idle."""
import os, subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import BIN, ROOT

NOTEBOOKS = sorted((ROOT/"nbs").glob("[0-9]*.ipynb"))
WORKERS = min(os.cpu_count() or 1, 4)


@pytest.fixture(scope="session")
def notebook_results(request) -> dict:
    "nbdev-test of every notebook this session selected, run `WORKERS` at a time: notebook -> CompletedProcess."
    chosen = [item.callspec.params["nb"] for item in request.session.items if getattr(item, "originalname", "") == "test_notebook"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = lambda nb: subprocess.run([str(BIN/"nbdev-test"), str(nb)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    with ThreadPoolExecutor(WORKERS) as pool: return dict(zip(chosen, pool.map(run, chosen)))


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_notebook(nb, notebook_results):
    r = notebook_results[nb]
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]

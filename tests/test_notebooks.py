"Every library notebook's own examples and tests (nbdev-test), one pytest case per notebook."
import subprocess
from pathlib import Path

import pytest

from conftest import BIN, ROOT

NOTEBOOKS = sorted((ROOT/"nbs").glob("[0-9]*.ipynb"))


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_notebook(nb):
    r = subprocess.run([str(BIN/"nbdev-test"), str(nb)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]

"Every registered experiment's smoke profile runs end to end through the runner."
import pytest

from factlab.workbook.claims import VERDICTS
from factlab.workbook.registry import load_registry
from factlab.workbook.runs.batch import run_experiment

from conftest import data_available

REGISTRY = load_registry()


@pytest.mark.parametrize("name", list(REGISTRY))
def test_smoke_profile(name, run_store):
    if not data_available(): pytest.skip("FACTLAB_DATA is not set: the experiments need the papers' data")
    rec = run_experiment(name, "smoke", registry=REGISTRY, force=True, publish=False, cell_timeout=600)
    assert rec["status"] == "ok", rec["error"]
    assert rec["claims"] and all(c["verdict"] in VERDICTS for c in rec["claims"].values())
    assert rec["metrics"], "the notebook logged no metrics"
    assert "factlab" in rec["code"], "the run record lists no factlab modules"

"factlab.data against the shared data folder (skipped when FACTLAB_DATA is absent)."
import os
from pathlib import Path

import pytest

from factlab.core import FactlabError
from factlab.data import list_datasets, load

needs_data = pytest.mark.skipif(not (os.environ.get("FACTLAB_DATA") and Path(os.environ["FACTLAB_DATA"]).is_dir()),
                                reason="FACTLAB_DATA is not set to the data folder")


@needs_data
@pytest.mark.parametrize("name,n", [("cities", 1496), ("neg_cities", 1496), ("sp_en_trans", 354), ("larger_than", 1980),
                                    ("smaller_than", 1980), ("companies_true_false", 1200), ("common_claim_true_false", 4450),
                                    ("counterfact_true_false", 31964)])
def test_truth_probe_counts(name, n):
    ds = load(name)
    assert len(ds) == n
    assert {"statement", "label"} <= set(ds.column_names) and set(ds["label"]) == {0, 1}


@needs_data
def test_truth_probe_extra_columns_kept():
    assert {"city", "country", "correct_country"} <= set(load("cities").column_names)
    assert {"n1", "n2"} <= set(load("larger_than").column_names)


@needs_data
def test_fib_counts():
    xs, cnn = load("fib/xsum"), load("fib/cnn_dm")
    assert len(xs) == 3122 and len(set(xs["distractor_model"])) == 7 and len(set(xs["id"])) == 500
    assert len(cnn) == 457 and len(set(cnn["distractor_model"])) == 15
    assert {"id", "input", "correct_choice", "list_choices", "lbl"} <= set(xs.column_names)
    assert "bloom-560m" in set(xs["distractor_model"]) and "lead3" in set(cnn["distractor_model"])


@needs_data
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("ds", ["xsum", "cnn_dm"])
def test_fib_extra_sets(ds):
    for sub in ["factcc", "mfma", "fir", "factually_consistent-model_generated"]:
        d = load(f"fib/{ds}/{sub}")
        assert len(d) > 0 and {"distractor", "source_file", "lbl"} <= set(d.column_names)
    assert set(load(f"fib/{ds}/factcc")["distractor"]) == {"negation", "entswp", "pronoun", "numswp", "dateswp"}


@needs_data
def test_bigbench_and_splits():
    assert len(load("bigbench/truthful_qa/task_mc")) == 299
    tr, te = load("cities", split="train"), load("cities", split="test")
    assert len(tr) + len(te) == 1496 and not set(tr["statement"]) & set(te["statement"])


def test_unknown_name_and_missing_data(tmp_path, monkeypatch):
    with pytest.raises(FactlabError, match="cities"): load("citis")
    monkeypatch.setenv("FACTLAB_DATA", str(tmp_path)); monkeypatch.setenv("FACTLAB_CACHE", str(tmp_path/"cache"))
    monkeypatch.setenv("FACTLAB_OFFLINE", "1")
    with pytest.raises(FactlabError, match="FACTLAB_DATA") as e: load("neg_cities")
    assert "neg_cities" in str(e.value)
    assert "fib/xsum" in list_datasets("fib")

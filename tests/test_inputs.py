"Issues 16 and 17: caches keyed by the content of what made them, and every input a run reads fingerprinted."
import os, shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from conftest import data_available
from factlab import core
from factlab.activations import cached_activations
from factlab.fib import score_fib, summary_score
from factlab.models import char_tokenizer, load_model, model_fingerprint, scratch_model


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FACTLAB_CACHE", str(tmp_path/"cache"))
    return tmp_path/"cache"


def _save_model(folder:Path, seed:int, texts) -> Path:
    tok = char_tokenizer(texts)
    scratch_model(len(tok), (2, 32, 2), seed=seed).save_pretrained(folder); tok.save_pretrained(folder)
    return folder


ITEMS = pd.DataFrame(dict(input=["Rain fell on Paris all day."], consistent=[" It rained in Paris."],
                          inconsistent=[" It was sunny in Paris."], dataset=["xsum"]))


def test_changed_weights_in_a_model_folder_are_scored_again(cache, tmp_path):
    texts = list(ITEMS.input) + list(ITEMS.consistent) + list(ITEMS.inconsistent) + ["Article: Summary: .\n"]
    texts.append("".join(map(chr, range(32, 127))))
    folder = _save_model(tmp_path/"my-model", seed=0, texts=texts)
    model, tok = load_model(str(folder), device="cpu")
    first = summary_score(score_fib(model, tok, ITEMS, templates=(0,), model_key="my-model", progress=False), "cons")
    _save_model(folder, seed=1, texts=texts)                           # new weights, same folder, same name
    model2, tok2 = load_model(str(folder), device="cpu")
    second = summary_score(score_fib(model2, tok2, ITEMS, templates=(0,), model_key="my-model", progress=False), "cons")
    assert model2.factlab_fingerprint == model_fingerprint(str(folder)) != model.factlab_fingerprint
    assert abs(float(first[0]) - float(second[0])) > 1e-3             # not read back from the first model's cache
    assert len(list((cache/"fib").glob("my-model-*.json"))) == 2


def test_changed_weights_get_new_activations(cache, tmp_path):
    texts = ["The sky is blue.", "Paris is in Spain."]
    folder = _save_model(tmp_path/"m", seed=0, texts=texts)
    a = cached_activations(str(folder), "toy", texts)
    _save_model(folder, seed=1, texts=texts)
    from factlab import activations; activations._LAST_MODEL.clear()
    b = cached_activations(str(folder), "toy", texts)
    assert not torch.allclose(a, b)
    assert len(list((cache/"activations").rglob("*.pt"))) == 2


def test_load_model_notes_its_input(cache, tmp_path):
    folder = _save_model(tmp_path/"m", seed=0, texts=["abc"])
    model, _ = load_model(str(folder), device="cpu")
    entry = core.inputs_used()[f"model/{folder}"]
    assert entry["sha256"] == model.factlab_fingerprint == core.input_fingerprint(folder)


@pytest.mark.skipif(not data_available(), reason="needs FACTLAB_DATA")
def test_truncated_local_dataset_warns_and_is_fingerprinted(tmp_path, monkeypatch):
    from factlab import data
    src = Path(os.environ["FACTLAB_DATA"])/"truth_probes/cities.csv"
    (tmp_path/"truth_probes").mkdir(); lines = src.read_text().splitlines(keepends=True)
    (tmp_path/"truth_probes/cities.csv").write_text("".join(lines[:48]))   # 47 of 1,496 rows
    monkeypatch.setenv("FACTLAB_DATA", str(tmp_path))
    with pytest.warns(UserWarning, match="differs from truth_probes/cities.csv at its pinned source"):
        ds = data.load("cities")
    entry = core.inputs_used()["data/truth_probes/cities.csv"]
    assert len(ds) == entry["rows"] == 47 and entry["sha256"] == core.file_sha256(tmp_path/"truth_probes/cities.csv")


@pytest.mark.skipif(not data_available(), reason="needs FACTLAB_DATA")
def test_shared_data_matches_the_pinned_checksums():
    from factlab import data
    root = Path(os.environ["FACTLAB_DATA"])
    checked = {rel: sha for rel, sha in data.pinned_sha256().items() if (root/rel).exists()}
    assert len(checked) >= 80
    assert {rel for rel, sha in checked.items() if core.file_sha256(root/rel) != sha} == set()
    assert all(data._url(rel).startswith("https://raw.githubusercontent.com/") and "/main/" not in data._url(rel) for rel in checked)


def test_damaged_converted_model_is_moved_aside_and_rebuilt(cache):
    from factlab.models import _offline_source, _gguf_to_cache
    try: _offline_source("smollm2-135m-instruct")
    except Exception as e: pytest.skip(f"offline model not installed: {e}")
    home = Path(os.environ.get("HOME", "~")).expanduser()/".cache/factlab/models"
    done = sorted(home.glob("smollm2-135m-instruct-*"))
    target = cache/"models"/(done[0].name if done else "x")
    if done: shutil.copytree(done[0], target)                 # skip the 17 s conversion when it was done before
    else: target = _gguf_to_cache(_offline_source("smollm2-135m-instruct"), "smollm2-135m-instruct")
    weights = target/"model.safetensors"; weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.warns(UserWarning, match="could not be read"):
        model, tok = load_model("smollm2-135m-instruct", device="cpu")
    assert (target/"model.safetensors").stat().st_size > 10**8 and list(target.parent.glob("*.unreadable-*"))

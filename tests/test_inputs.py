"Issues 16 and 17: every input a run reads fingerprinted and pinned (the cache-key faults are in test_faults.py)."
import os, shutil
from pathlib import Path

import pytest

from conftest import data_available
from factlab import core
from factlab.models import char_tokenizer, load_model, scratch_model


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FACTLAB_CACHE", str(tmp_path/"cache"))
    return tmp_path/"cache"


def _save_model(folder:Path, seed:int, texts) -> Path:
    tok = char_tokenizer(texts)
    scratch_model(len(tok), (2, 32, 2), seed=seed).save_pretrained(folder); tok.save_pretrained(folder)
    return folder


def test_load_model_notes_its_input(cache, tmp_path):
    folder = _save_model(tmp_path/"m", seed=0, texts=["abc"])
    model, _ = load_model(str(folder), device="cpu")
    entry = core.inputs_used()[f"model/{folder}"]
    assert entry["sha256"] == model.factlab_fingerprint == core.input_fingerprint(folder)


@pytest.mark.skipif(not data_available(), reason="needs FACTLAB_DATA")
def test_shared_data_matches_the_pinned_checksums():
    from factlab import data
    root = Path(os.environ["FACTLAB_DATA"])
    checked = {rel: sha for rel, sha in data.pinned_sha256().items() if (root/rel).exists()}
    assert len(checked) >= 80
    assert {rel for rel, sha in checked.items() if core.file_sha256(root/rel) != sha} == set()
    assert all(data._url(rel).startswith("https://raw.githubusercontent.com/") and "/main/" not in data._url(rel) for rel in checked)


@pytest.mark.slow   # converts SmolLM2 from its GGUF file (17 s or more)
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

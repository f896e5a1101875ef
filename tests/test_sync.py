"nbdev-export on a clean copy of the checkout changes nothing in factlab/, untracked files included."
import hashlib, shutil, subprocess

from conftest import BIN, ROOT


def _tree(d):
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(d.rglob("*.py")) if "__pycache__" not in p.parts}


def test_export_leaves_library_unchanged(tmp_path):
    shutil.copy2(ROOT/"pyproject.toml", tmp_path/"pyproject.toml")
    for name in ("nbs", "factlab"): shutil.copytree(ROOT/name, tmp_path/name, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    before = _tree(tmp_path/"factlab")
    r = subprocess.run([str(BIN/"nbdev-export")], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    after = _tree(tmp_path/"factlab")
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"nbdev-export changed {changed}: run `make sync` and commit factlab/ with the notebooks"


def test_clean_keeps_papermill_parameters(tmp_path):
    shutil.copy2(ROOT/"pyproject.toml", tmp_path/"pyproject.toml")
    shutil.copytree(ROOT/"nbs", tmp_path/"nbs", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    r = subprocess.run([str(BIN/"nbdev-clean")], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    import papermill as pm
    notebooks = sorted((tmp_path/"nbs/experiments").glob("*.ipynb"))
    assert notebooks, "no experiment notebooks found"
    for nb in notebooks:
        assert "out_dir" in pm.inspect_notebook(str(nb)), f"{nb.name}: the parameters cell lost its tag or out_dir"

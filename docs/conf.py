"Sphinx settings for factlab's site; `docs/build.py` writes the pages' sources to docs/_build/src and builds from them."
import tomllib
from pathlib import Path

_project = tomllib.loads((Path(__file__).resolve().parents[1]/"pyproject.toml").read_text())["project"]

project = "factlab"
author = _project["authors"][0]["name"]
extensions = ["myst_nb"]
exclude_patterns = ["**.ipynb_checkpoints"]

# The library notebooks are executed by docs/build.py (with a cache); the experiment notebooks keep their published outputs.
nb_execution_mode = "off"
nb_merge_streams = True
myst_heading_anchors = 3
# the claims report's headings carry raw `<a id>` anchors; notebooks' first headings are their page titles
suppress_warnings = ["myst.header", "misc.highlighting_failure"]

html_theme = "pydata_sphinx_theme"
html_title = "factlab"
html_favicon = "favicon.svg"   # without one, browsers request /favicon.ico and log its 404 as a console error
html_context = {"default_mode": "auto"}   # the theme's light/dark mode on a first visit (unset, it logs an error)
html_copy_source = False
html_show_sourcelink = False
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
    "icon_links": [{"name": "Repository", "url": _project["urls"]["Repository"], "icon": "fa-brands fa-github"}],
}

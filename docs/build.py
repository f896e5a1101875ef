"""Build factlab's documentation site offline: Sphinx + myst-nb + pydata-sphinx-theme, from the same notebooks.

Pages: the claims report (`reports/README.md`) as the landing page; every library notebook (`nbs/*.ipynb`) as an API
page, executed here so its examples show their outputs, listed under "Workbook" where its `#| default_exp` is a module of
`factlab.workbook` and under "Library" (the science) otherwise; every published experiment run
(`reports/<id>/<profile>/<id>.ipynb`) with the outputs it was published with, never re-executed. Nothing under `nbs/`
or `reports/` is modified: the pages' sources are written to `docs/_build/src`, the site to `docs/_build/html`.

    python docs/build.py            # executes the library notebooks whose source or factlab's code changed
    python docs/build.py --jobs 1   # one kernel at a time
"""
import argparse, hashlib, os, re, shutil, subprocess, sys, time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat
from nbdev.config import nbpath2html

ROOT = Path(__file__).resolve().parents[1]
NBS, REPORTS, DOCS = ROOT/"nbs", ROOT/"reports", ROOT/"docs"
BUILD = DOCS/"_build"
SRC, HTML, EXECUTED = BUILD/"src", BUILD/"html", BUILD/"executed"

# Library notebooks rendered without executing them (with the reason, shown on the page). Empty: each notebook's
# examples run in 4 s to 2 min on a busy 2-core machine; its `#| slow` and `#| gpu` cells are skipped, as nbdev-test does.
NOT_EXECUTED: dict[str, str] = {}

# nbdev cell directives -> the myst-nb / nbclient cell tags that do the same on the page
DIRECTIVE_TAGS = {"hide": "remove-cell", "default_exp": "remove-cell", "eval": "skip-execution",
                  "slow": "skip-execution", "gpu": "skip-execution", "echo": "remove-input",
                  "hide_input": "remove-input", "output": "remove-output"}
FALSE_VALUED = {"eval", "echo", "output"}   # these three act only as `#| eval: false` and the like
WIDGET = "application/vnd.jupyter.widget-view+json"
_directive = re.compile(r"^\s*#\|\s*([\w-]+):?\s*(.*?)\s*$")


def page_name(nb: Path) -> str:
    "A library notebook's page, named as nbdev names it (`00_core.ipynb` -> `core`), so the modules' `Docs:` URLs resolve."
    return nbpath2html(nb.relative_to(NBS)).with_suffix("").as_posix()


def exported_module(nb) -> str:
    "The module a notebook exports to, as its `#| default_exp` line names it (`workbook.claims`)."
    for cell in nb.cells:
        for line in cell.source.splitlines() if cell.cell_type == "code" else ():
            if (m := _directive.match(line)) and m[1] == "default_exp": return m[2]
    return ""


def tag_directives(cell) -> None:
    "Turn a code cell's leading `#|` lines into cell tags and drop them from the shown source."
    lines = cell.source.splitlines()
    n = 0
    while n < len(lines) and (m := _directive.match(lines[n])):
        key, value = m.group(1), m.group(2).lower()
        tag = DIRECTIVE_TAGS.get(key)
        if tag and (key not in FALSE_VALUED or value == "false"):
            tags = cell.metadata.setdefault("tags", [])
            if tag not in tags: tags.append(tag)
        n += 1
    cell.source = "\n".join(lines[n:])


def drop_widgets(nb) -> None:
    "Drop progress-bar widget outputs and widget state: rendering them would load ipywidgets' JavaScript from a CDN."
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type == "code": cell.outputs = [o for o in cell.outputs if WIDGET not in o.get("data", {})]


def code_version() -> str:
    "A hash of factlab's sources: a library notebook's cached outputs are reused only while it and they are unchanged."
    h = hashlib.sha256()
    for p in sorted((ROOT/"factlab").rglob("*.py")): h.update(p.read_bytes())
    return h.hexdigest()


def execute(nb_path: Path, tagged: Path, out: Path, timeout: int) -> float:
    "Execute the tagged copy of a notebook in `nbs/` (where its relative paths point), writing it with its outputs to `out`."
    from nbclient import NotebookClient
    nb = nbformat.read(tagged, as_version=4)
    t0 = time.time()
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(nb_path.parent)}},
                   skip_cells_with_tag="skip-execution").execute(stderr=subprocess.DEVNULL)   # the kernel's own start-up chatter
    nbformat.write(nb, out)
    tagged.unlink()
    return time.time() - t0


def library_pages(jobs: int, timeout: int) -> dict[str, str]:
    """Tag, then execute (or reuse from `docs/_build/executed`) every library notebook; write their page sources.
    Returns each page's module, from its `#| default_exp`."""
    EXECUTED.mkdir(parents=True, exist_ok=True)
    version, todo, pages, modules = code_version(), {}, [], {}
    for nb_path in sorted(NBS.glob("*.ipynb")):
        page = page_name(nb_path)
        nb = nbformat.read(nb_path, as_version=4)
        modules[page] = exported_module(nb)
        for cell in nb.cells:
            if cell.cell_type == "code": tag_directives(cell)
        if nb_path.name in NOT_EXECUTED:
            nb.cells.insert(1, nbformat.v4.new_markdown_cell(f"*This page shows the code without its outputs: {NOT_EXECUTED[nb_path.name]}.*"))
        key = hashlib.sha256((version + nbformat.writes(nb)).encode()).hexdigest()[:16]
        cached = EXECUTED/f"{page}.{key}.ipynb"
        if not cached.exists():
            for old in EXECUTED.glob(f"{page}.*.ipynb"): old.unlink()
            if nb_path.name in NOT_EXECUTED: nbformat.write(nb, cached)
            else:
                nbformat.write(nb, tagged := EXECUTED/f"{page}.{key}.tagged.ipynb")
                todo[nb_path] = tagged, cached
        pages.append((page, cached))
    if todo:
        print(f"executing {len(todo)} library notebooks ({jobs} at a time)", flush=True)
        with ProcessPoolExecutor(jobs) as pool:
            futures = {nb: pool.submit(execute, nb, *paths, timeout) for nb, paths in todo.items()}
            for nb, f in futures.items():
                try: print(f"  {nb.name}: {f.result():.0f} s", flush=True)
                except Exception as e: sys.exit(f"docs: {nb.relative_to(ROOT)} failed while executing:\n{e}")
    for page, cached in pages:
        nb = nbformat.read(cached, as_version=4)
        drop_widgets(nb)
        nbformat.write(nb, SRC/f"{page}.ipynb")
    return modules


def run_page_name(exp: str, profile: str) -> str:
    "A published run's page: `experiments/<id>` for the `cpu` run, `experiments/<id>-<profile>` for another."
    return f"experiments/{exp}" if profile == "cpu" else f"experiments/{exp}-{profile}"


def experiment_pages() -> list[str]:
    "Every published run notebook, with the outputs it was published with."
    pages = []
    for nb_path in sorted(REPORTS.glob("*/*/*.ipynb")):
        exp, profile = nb_path.parent.parent.name, nb_path.parent.name
        if nb_path.stem != exp: continue
        page = run_page_name(exp, profile)
        nb = nbformat.read(nb_path, as_version=4)
        drop_widgets(nb)
        if profile != "cpu":   # its title says which run it is
            title = next(c for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("# "))
            first, _, rest = title.source.partition("\n")
            title.source = f"{first} (the `{profile}` run)\n{rest}"
        (SRC/page).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, SRC/f"{page}.ipynb")
        pages.append(page)
    return pages


def run_page(link: str) -> str | None:
    "The experiment page for a report link to a run's HTML rendering (`<id>/<profile>/<id>.html`), if the site has it."
    m = re.fullmatch(r"([\w-]+)/([\w-]+)/\1\.html", link)
    if not m: return None
    page = run_page_name(m[1], m[2])
    return page if (SRC/f"{page}.ipynb").exists() else None


def landing_page(library: dict[str, str], experiments: list[str]) -> None:
    """The claims report as `index.md` (its figures copied beside it, its run links pointed at the experiment pages), and the
    section pages it lists: Experiments, Library (the science modules) and Workbook (those under `factlab.workbook`)."""
    def relink(m):
        link = m.group(2)
        if re.match(r"[a-z]+:|#", link): return m.group(0)
        if page := run_page(link): return f"{m.group(1)}({page}.ipynb)"
        (SRC/link).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPORTS/link, SRC/link)
        return m.group(0)
    text = re.sub(r"(\]|!\[[^\]]*\])\(([^)\s]+)\)", relink, (REPORTS/"README.md").read_text())
    # a heading's raw `<a id="x"></a>` anchor becomes a MyST target, so that `[...](#x)` resolves to the section
    text = re.sub(r'^(#+) <a id="([^"]+)"></a>', r"(\2)=\n\1 ", text, flags=re.M)
    toc = lambda caption, pages: f"\n```{{toctree}}\n:hidden:\n:caption: {caption}\n\n" + "\n".join(pages) + "\n```\n"
    (SRC/"index.md").write_text(text + toc("Site", ["experiments/index", "library", "workbook"]))
    (SRC/"experiments/index.md").write_text(
        "# Experiments\n\nEach paper's notebook as its published runs executed it (`factlab run <id> --profile cpu`,"
        " and any other profile published under `reports/`), with their outputs.\n" + toc("Experiments", [p.removeprefix("experiments/") for p in experiments]))
    workbook = [page for page, module in library.items() if module.startswith("workbook.")]
    pages_note = " One page per notebook in `nbs/`: the exported code, with its examples executed when this site was built.\n"
    (SRC/"library.md").write_text(
        "# Library\n\nThe science: `factlab`'s data, models, training, scoring and probing, the synthetic worlds and each"
        " paper's recipes." + pages_note + toc("Library", [p for p in library if p not in workbook]))
    (SRC/"workbook.md").write_text(
        "# Workbook\n\nThe machinery around the experiments, `factlab.workbook`: claims and their verdicts, the registry,"
        " what a notebook logs, the runner, the report and the `factlab` command." + pages_note + toc("Workbook", workbook))


def markdown_copies(library: list[str]) -> None:
    "Each library page also as `<page>.html.md`, the Markdown that the modules' `Docs:` URLs name (nbdev's convention)."
    from nbconvert import MarkdownExporter
    from nbconvert.preprocessors import TagRemovePreprocessor
    exporter = MarkdownExporter()
    exporter.register_preprocessor(TagRemovePreprocessor(remove_cell_tags={"remove-cell"}, remove_input_tags={"remove-input"},
                                                         remove_all_outputs_tags={"remove-output"}), enabled=True)
    for page in library:
        md, resources = exporter.from_filename(str(SRC/f"{page}.ipynb"), resources={"output_files_dir": f"{page}_files"})
        (HTML/f"{page}.html.md").write_text(md)
        for name, data in resources.get("outputs", {}).items():
            (HTML/name).parent.mkdir(parents=True, exist_ok=True)
            (HTML/name).write_bytes(data)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=int(os.environ.get("DOCS_JOBS", min(2, os.cpu_count() or 1))),
                    help="library notebooks executed at once")
    ap.add_argument("--timeout", type=int, default=600, help="seconds one cell may run")
    args = ap.parse_args()
    t0 = time.time()
    shutil.rmtree(SRC, ignore_errors=True); shutil.rmtree(HTML, ignore_errors=True)
    SRC.mkdir(parents=True)
    library = library_pages(args.jobs, args.timeout)
    experiments = experiment_pages()
    landing_page(library, experiments)
    subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-q", "-c", str(DOCS), str(SRC), str(HTML)], check=True)
    markdown_copies(list(library))
    print(f"docs: {len(library)} library and workbook pages, {len(experiments)} experiment pages in {time.time() - t0:.0f} s:"
          f" {(HTML/'index.html').relative_to(ROOT)}")


if __name__ == "__main__": main()

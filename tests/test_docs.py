"""The documentation site (`make docs`): built from the notebooks, then rendered page by page in headless Chromium.

Every page must load without console errors or uncaught exceptions, every image must load and every internal link
resolve (to a built file, and to an anchor in it when it names one), the landing page must carry the claims report's
tables, the Library and Workbook sections must each list their notebooks, and each module's `Docs:` URL must name a file
the site builds. Skips where the `docs` extra (Sphinx, myst-nb, pydata-sphinx-theme) or Debian's `chromium` is missing.
"""
import ast, functools, importlib.util, json, re, shutil, subprocess, sys, tempfile, threading, tomllib
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit
from urllib.request import urlopen

import pytest
from nbdev.config import nbpath2html

from conftest import ROOT

pytestmark = pytest.mark.slow
HTML = ROOT/"docs/_build/html"
DOCS_EXTRA = ("sphinx", "myst_nb", "pydata_sphinx_theme")


def chromium() -> str | None:
    return next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)


@pytest.fixture(scope="module")
def site() -> Path:
    "The site, (re)built by docs/build.py: library notebooks execute only where they or factlab changed."
    missing = [m for m in DOCS_EXTRA if importlib.util.find_spec(m) is None]
    if missing: pytest.skip(f"the docs extra is not installed ({', '.join(missing)}): `make docs` installs it")
    r = subprocess.run([sys.executable, str(ROOT/"docs/build.py")], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    return HTML


class _Refs(HTMLParser):
    "Element ids, `<img src>` and `<a href>` of one HTML page."
    def __init__(self):
        super().__init__(); self.ids, self.imgs, self.links = set(), [], []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"): self.ids.add(a["id"])
        if tag == "a" and a.get("name"): self.ids.add(a["name"])
        if tag == "img" and a.get("src"): self.imgs.append(a["src"])
        if tag == "a" and a.get("href"): self.links.append(a["href"])


@functools.cache
def refs(page: Path) -> _Refs:
    p = _Refs(); p.feed(page.read_text(errors="replace")); return p


def unresolved(site: Path, page: Path) -> list[str]:
    "The images and internal links of `page` that name no built file, or an anchor its target lacks."
    bad, r = [], refs(page)
    for kind, url in [("img", u) for u in r.imgs] + [("link", u) for u in r.links]:
        parts = urlsplit(url)
        if parts.scheme or parts.netloc: continue   # external (https:, mailto:, data:)
        target = (page.parent/unquote(parts.path)).resolve() if parts.path else page
        if target.is_dir(): target = target/"index.html"
        if not target.is_file() or site.resolve() not in target.parents: bad.append(f"{kind} {url}: no such file")
        elif kind == "link" and parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in refs(target).ids:
            bad.append(f"link {url}: no anchor #{parts.fragment} in {target.relative_to(site.resolve())}")
    return bad


def pages(site: Path) -> list[Path]:
    "The site's pages (not the theme's template fragments under _static/)."
    return sorted(p for p in site.rglob("*.html") if "_static" not in p.relative_to(site).parts)


def test_links_and_images_resolve(site):
    found = pages(site)
    assert len(found) > 40, [p.name for p in found]
    bad = {p.relative_to(site).as_posix(): b for p in found if (b := unresolved(site, p))}
    assert not bad, json.dumps(bad, indent=1)[:4000]


def test_every_notebook_has_a_page(site):
    runs = [nb for nb in (ROOT/"reports").glob("*/*/*.ipynb") if nb.stem == nb.parent.parent.name]
    for nb in (ROOT/"nbs").glob("*.ipynb"): assert (site/nbpath2html(nb.name)).is_file(), nb
    for nb in runs:
        exp, profile = nb.stem, nb.parent.name
        assert (site/"experiments"/(f"{exp}.html" if profile == "cpu" else f"{exp}-{profile}.html")).is_file(), nb


def test_pages_show_outputs(site):
    "A library page shows its executed examples' outputs and hides `#| hide` cells; an experiment page its published figures."
    core = (site/"core.html").read_text()
    assert 'class="cell_output' in core
    assert "#| hide" not in core and "#| export" not in core and "default_exp" not in core
    assert refs(site/"experiments/truth_directions.html").imgs, "the published run's figures are missing"


def test_claims_table_on_landing_page(site):
    "Every table row of reports/README.md is a row of the landing page."
    rows = [l for l in (ROOT/"reports/README.md").read_text().splitlines()
            if l.startswith("|") and not re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", l)]
    index = (site/"index.html").read_text()
    assert "<table" in index and "Verdict" in index
    assert index.count("<tr") == len(rows)


def test_library_and_workbook_sections(site):
    "The site lists a Library and a Workbook section; a notebook's page sits in Workbook exactly when its module is under `workbook.`."
    library, workbook = set(), set()
    for nb in (ROOT/"nbs").glob("*.ipynb"):
        module = re.search(r"#\| default_exp ([\w.]+)", nb.read_text())[1]
        (workbook if module.startswith("workbook.") else library).add(nbpath2html(nb.name).as_posix())
    assert workbook and {"library.html", "workbook.html"} <= set(refs(site/"index.html").links)
    for section, mine, other in [("library.html", library, workbook), ("workbook.html", workbook, library)]:
        sidebar = _Refs(); sidebar.feed(re.search(r'<nav class="bd-docs-nav.*?</nav>', (site/section).read_text(), re.S)[0])
        links = set(sidebar.links)
        assert mine <= links and not other & links, (section, mine - links, other & links)


def test_module_docs_urls_name_built_files(site):
    "Each module's `Docs: <url>` line names a file of the site (under the Documentation URL it is published at)."
    base = tomllib.loads((ROOT/"pyproject.toml").read_text())["project"]["urls"]["Documentation"]
    urls = {}
    for py in (ROOT/"factlab").rglob("*.py"):
        doc = ast.get_docstring(ast.parse(py.read_text())) or ""
        if m := re.search(r"^Docs: (\S+)$", doc, re.M): urls[py.relative_to(ROOT).as_posix()] = m[1]
    assert urls, "no module docstring carries a Docs: URL"
    for module, url in urls.items():
        assert url.startswith(base), (module, url, base)
        assert (site/url.removeprefix(base)).is_file(), f"{module}: {url} names no built file"


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args): pass


@pytest.fixture(scope="module")
def server(site):
    "The site over HTTP on localhost, as a host would serve it."
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


class Browser:
    "Headless Chromium driven over the DevTools protocol: load a page, collect its console errors and broken images."
    def __init__(self, exe: str):
        import websocket
        self.profile = tempfile.mkdtemp(prefix="factlab-chromium-")
        self.proc = subprocess.Popen([exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                      "--remote-debugging-port=0", f"--user-data-dir={self.profile}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        port = None
        for line in self.proc.stderr:
            if m := re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line): port = m[1]; break
        assert port, "chromium did not start its DevTools server"
        threading.Thread(target=lambda: [None for _ in self.proc.stderr], daemon=True).start()   # keep its pipe drained
        target = next(t for t in json.load(urlopen(f"http://127.0.0.1:{port}/json/list")) if t["type"] == "page")
        self.ws = websocket.create_connection(target["webSocketDebuggerUrl"], timeout=60, suppress_origin=True)
        self.n, self.events = 0, []
        for domain in ("Page", "Runtime", "Log"): self.call(f"{domain}.enable")

    def _recv(self):
        msg = json.loads(self.ws.recv()); self.events.append(msg); return msg

    def call(self, method, **params):
        self.n += 1
        self.ws.send(json.dumps(dict(id=self.n, method=method, params=params)))
        while (msg := self._recv()).get("id") != self.n: pass
        if "error" in msg: raise RuntimeError(f"{method}: {msg['error']}")
        return msg.get("result", {})

    def load(self, url: str, settle: float = 0.5) -> list[str]:
        "Open `url`; its console errors, uncaught exceptions and failed loads, then its images that did not load."
        self.events = []
        self.call("Page.navigate", url=url)
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events): self._recv()
        self.ws.settimeout(settle)   # errors raised just after the load event
        try:
            while True: self._recv()
        except Exception: pass
        finally: self.ws.settimeout(60)
        errors = []
        for e in self.events:
            p = e.get("params", {})
            if e.get("method") == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]; errors.append(d.get("exception", {}).get("description") or d["text"])
            elif e.get("method") == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
                errors.append("console: " + " ".join(str(a.get("value", a.get("description"))) for a in p["args"]))
            elif e.get("method") == "Log.entryAdded" and p["entry"]["level"] == "error":
                errors.append(f"{p['entry']['text']} {p['entry'].get('url', '')}")
        broken = self.call("Runtime.evaluate", returnByValue=True, expression=
                           "Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)")
        return errors + [f"image did not load: {src}" for src in broken["result"]["value"]]

    def close(self):
        self.ws.close(); self.proc.terminate(); self.proc.wait(10)
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    exe = chromium()
    if not exe: pytest.skip("no chromium on PATH (Debian: apt-get install chromium)")
    b = Browser(exe); yield b; b.close()


def test_pages_load_without_console_errors(site, server, browser):
    failures = {page: errs for page in (p.relative_to(site).as_posix() for p in pages(site))
                if (errs := browser.load(urljoin(server, page)))}
    assert not failures, json.dumps(failures, indent=1)[:4000]


def test_browser_sees_claims_table(site, server, browser):
    assert not browser.load(server)
    rows = browser.call("Runtime.evaluate", returnByValue=True,
                        expression="Array.from(document.querySelectorAll('table tr th')).map(th => th.textContent.trim())")
    headers = rows["result"]["value"]
    assert {"Claim", "Verdict", "Paper", "Preconditions"} <= set(headers), headers

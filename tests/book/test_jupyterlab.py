"""Every chapter as a learner meets it: opened in JupyterLab, run with *Run All*, in a real browser.

A JupyterLab server on 127.0.0.1 (a token, no network; set up by ``book/tools/setup_lab.sh``,
the script ``binder/postBuild`` and ``make lab`` run, so the ``.md`` chapters open as
notebooks through jupytext and jupyterlab-myst renders their markdown), served under a
JupyterHub-style prefix (``/user/learner/``, ``JUPYTERHUB_SERVICE_PREFIX`` set) as on
Binder and hubs. The system Chromium (Playwright, ``executable_path``) opens each chapter
of ``_toc.yml``, runs *Run All* against the mirror, and the test checks, against the web
page the book build made of the same chapter:

- no cell ends in an error;
- no raw MyST in the rendered markdown (fences, directive options, role text) and every
  markdown cell rendered;
- as many figures as the web page (images in the cells' outputs, decoded);
- every value the web page computed into its prose (``{eval}``) shows in the notebook's
  prose too, the same value unless it is a measurement (timings, throughput: ``MEASURED``);
- every solution collapsed after *Run All* (its cells hidden under a collapsed heading),
  and, once opened, its cells visible with the outputs of the web page's solution.

JupyterLab's windowed notebook keeps off-screen cells out of the DOM: the test's user
settings set ``windowingMode`` to ``none``. Screenshots of every chapter (the top, the
exercises with their solutions closed and open, every figure) and a summary of the
numbers go to ``_build/jupyterlab/`` (git-ignored).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from bs4 import BeautifulSoup
from playwright.sync_api import sync_playwright  # ImportError fails collection: no silent skip

from tests.book.chapters import toc_chapters
from tests.book.lab import NOTEBOOK, PREFIX, LabServer, launch_browser, open_notebook, run_all
from tests.book.test_chapter_contract import eval_expressions, eval_names
from tests.fixtures import ROOT

ARTIFACTS = ROOT / "_build" / "jupyterlab"
RUN_ALL_TIMEOUT_S = 1200

# Names in {eval} roles whose value is a measurement of this run (a time, a rate, a peak of
# memory, the memory this machine has free), or is worded from one: the notebook must show
# a value there, not necessarily the web page's.
MEASURED = {
    "book/03_dask_ndvi": {"t_numpy", "t_threads", "t_sync", "t_threads_w", "speedup", "speedup_sync",
                          "m_numpy", "m_threads", "m_threads_w", "budget_gib", "numpy_tile_share", "dask_vs_numpy",
                          "bytes_per_px", "numpy_tile_gib",
                          "peak_one_block", "work_numpy", "peak_ours", "m_start", "tile_estimate_s"},
    "book/05_chipping": {"precut_s", "index_pair_s", "disk_ms", "fly_ms", "index_s", "archive_s", "rerun_s",
                          "archive_vs_serial"},
    "book/06_batching": {"rate_sharded", "rate_cold", "rate_cached", "rate_random_2", "rate_blocks_2",
                         "sharded_vs_cold", "cached_vs_cold", "sent_random_vs_cold", "sent_blocks_vs_cold",
                         "sharded_vs_cold_verdict", "sharded_vs_cached_verdict", "workers_here",
                         "warp_slowdown"},
    "book/07_predict": {"train_seconds", "chips_per_s"},
}

# Raw MyST that must not reach a learner's eyes: fences, directive options, roles, targets.
RAW_MYST = re.compile(r"```|:::|^\s*:(?:label|class|name|alt|tags|width):|\{(?:term|eval|ref|numref|doc|"
                      r"glue(?::\w+)?|exercise(?:-start|-end)?|solution(?:-start|-end)?|code-cell|"
                      r"admonition|note|warning|figure)\}|^\s*\([\w-]+\)=\s*$", re.M)


@pytest.fixture(scope="module")
def lab(mirror, request):
    failed = request.session.testsfailed
    # the web pages were built without MEM_LIMIT: the same sizes, the same numbers
    with LabServer(env={"MEM_LIMIT": None}) as server:
        yield server
        server.keep = request.session.testsfailed > failed


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as pw:
        b = launch_browser(pw)
        yield b
        b.close()


# --------------------------------------------------------------------------------------
# the web page of a chapter: its figures, the values in its prose, its solutions' outputs
# --------------------------------------------------------------------------------------

def web_chapter(html_dir: Path, chapter: str) -> dict:
    soup = BeautifulSoup((html_dir / f"{chapter}.html").read_text(), "html.parser")
    article = soup.select_one("article.bd-article")
    images = [img for img in article.select("img") if "/_images/" in img.get("src", "")]
    values = [span.get_text() for span in article.select("span.output.text_plain")
              if not span.find_parent(class_="cell_output") and not span.find_parent("figcaption")]
    solutions = []
    for sol in article.select("div.solution"):
        outputs = [" ".join(" ".join(o.get_text() for o in cell.select(
            "div.cell_output > div.output.stream, div.cell_output > div.output.text_plain")).split())
            for cell in sol.select("div.cell")]
        solutions.append({"outputs": outputs, "images": len(sol.select("div.cell_output img"))})
    return {"figures": len(images), "values": values, "solutions": solutions}


# --------------------------------------------------------------------------------------
# the notebook in JupyterLab
# --------------------------------------------------------------------------------------

def same_text(text: str) -> str:
    """Text as compared: the web page's typographic apostrophes and quotes (Sphinx's
    smartquotes) as typed."""
    return text.translate(str.maketrans("’‘“”", "''\"\""))


def strip_quotes(text: str) -> str:
    """As jupyterlab-myst and MyST-NB show a string's text/plain: without its quotes."""
    return re.sub(r"""^(["'])(.*)\1$""", r"\2", text, flags=re.S)


def solution_regions(page) -> list[dict]:
    """For every collapsed solution heading: its state and the cells under it."""
    return page.evaluate(f"""() => {{
      const cells = {NOTEBOOK}.content.widgets;
      const out = [];
      cells.forEach((c, i) => {{
        if (c.model.type !== 'markdown' || !c.model.getMetadata('jp-MarkdownHeadingCollapsed') &&
            !/^<h4 hidden>Solution<\\/h4>/.test(c.model.sharedModel.getSource())) return;
        const under = [];
        for (let j = i + 1; j < cells.length; j++) {{
          const d = cells[j];
          if (d.model.type === 'markdown' && d.headingInfo && d.headingInfo.level > 0
              && d.headingInfo.level <= 4) break;
          under.push({{index: j, type: d.model.type, visible: d.node.offsetParent !== null}});
        }}
        out.push({{index: i, collapsed: c.headingCollapsed, under}});
      }});
      return out;
    }}""")


def cell_outputs(nb: dict, index: int) -> tuple[str, int]:
    """(the text of its stdout and text/plain outputs, its number of images) of a code cell,
    as the web page shows them (stderr apart; a table's text/html instead of its text)."""
    texts, images = [], 0
    for o in nb["cells"][index].get("outputs", []):
        data = o.get("data", {})
        images += any(k.startswith("image/") for k in data)
        if o.get("output_type") == "stream" and o.get("name") == "stdout":
            texts.append(o["text"] if isinstance(o["text"], str) else "".join(o["text"]))
        elif "text/plain" in data and not any(k.startswith(("image/", "text/html")) for k in data):
            plain = data["text/plain"]
            texts.append(plain if isinstance(plain, str) else "".join(plain))
    return " ".join(" ".join(texts).split()), images


def timing_free(text: str) -> str:
    return re.sub(r"\d+(?:\.\d+)?", "#", text)


@pytest.mark.book
@pytest.mark.parametrize("chapter", toc_chapters(), ids=lambda c: c.split("/")[-1])
def test_chapter_runs_in_jupyterlab_as_on_the_web(lab, browser, built_book, chapter):
    web = web_chapter(built_book, chapter)
    source = (ROOT / f"{chapter}.md").read_bytes()
    shots = ARTIFACTS / chapter.split("/")[-1]
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    problems: list[str] = []
    context = browser.new_context(viewport={"width": 1280, "height": 1000})

    def only_local(route):
        if urlsplit(route.request.url).hostname == "127.0.0.1" or route.request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            problems.append(f"non-local request: {route.request.url}")
            route.abort()

    context.route("**/*", only_local)
    page = context.new_page()
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    try:
        open_notebook(page, lab, f"{chapter}.md")
        opened = page.evaluate(
            f"() => [{NOTEBOOK}.context.path, {NOTEBOOK}.node.classList.contains('jp-NotebookPanel')]")
        assert opened == [f"{chapter}.md", True], f"{chapter}.md did not open as a notebook: {opened}"
        page.screenshot(path=shots / "opened.png")

        load = os.getloadavg()[0]
        done, run_all_s, nb = run_all(page, RUN_ALL_TIMEOUT_S)
        errors = [f"cell {i}: {o.get('ename')}: {o.get('evalue')}" for i, c in enumerate(nb["cells"])
                  for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert done is True and not errors, "\n".join(errors) or "Run All stopped"
        page.evaluate(f"() => {NOTEBOOK}.content.widgets[0].node.scrollIntoView()")
        page.screenshot(path=shots / "top.png")

        # rendered markdown: every markdown cell rendered by jupyterlab-myst, no raw MyST
        rendered = page.evaluate(f"""() => {NOTEBOOK}.content.widgets.filter(c => c.model.type === 'markdown')
            .map(c => {{ const myst = c.node.querySelector('.jp-InputArea .myst');
                         return {{rendered: c.rendered && myst !== null, text: myst ? myst.textContent : '',
                                 code: myst ? Array.from(myst.querySelectorAll('code'), e => e.textContent)
                                            : []}}; }})""")
        unrendered = sum(not m["rendered"] for m in rendered)
        raw = [m.group(0) for r in rendered for m in RAW_MYST.finditer(r["text"])]
        assert unrendered == 0, f"{unrendered} markdown cells are not rendered by jupyterlab-myst"
        # an {eval} without a value shows its expression as code
        source_evals = set(eval_expressions((ROOT / f"{chapter}.md").read_text()))
        raw += [f"{{eval}}`{c}` unevaluated" for r in rendered for c in r["code"] if c in source_evals]
        assert not raw, f"raw MyST in the rendered notebook: {raw[:10]}"

        # computed values in the prose: the web page's, in order, and shown
        expressions = [e for c in nb["cells"] if c["cell_type"] == "markdown"
                       for e in c["metadata"].get("user_expressions", [])]
        assert [e["expression"] for e in expressions] == eval_expressions((ROOT / f"{chapter}.md").read_text())
        failed = [e["expression"] for e in expressions if e["result"].get("status") != "ok"]
        assert not failed, f"{{eval}} failed in JupyterLab: {failed}"
        values = [strip_quotes(e["result"]["data"]["text/plain"]) for e in expressions]
        assert len(values) == len(web["values"]), (len(values), len(web["values"]))
        measured = MEASURED.get(chapter, set())
        shown = set().union(*[eval_names(e["expression"]) for e in expressions])
        assert measured <= shown, f"stale MEASURED entries: {measured - shown}"
        differ = [(e["expression"], v, w) for e, v, w in zip(expressions, values, web["values"])
                  if same_text(v) != same_text(w) and not eval_names(e["expression"]) & measured]
        assert not differ, f"values that differ from the web page's: {differ}"
        prose = "".join(r["text"] for r in rendered)
        missing = [v for v in values if same_text(v) not in same_text(prose)]
        assert not missing, f"values not shown in the rendered prose: {missing}"

        # solutions: collapsed after Run All; open each, compare with the web page's
        regions = solution_regions(page)
        assert len(regions) == len(web["solutions"]) >= 3, (len(regions), len(web["solutions"]))
        closed = [r["index"] for r in regions if not r["collapsed"] or any(u["visible"] for u in r["under"])]
        assert not closed, f"solutions shown before they are opened (cells {closed})"
        page.evaluate(f"""() => {NOTEBOOK}.content.widgets.find(c => c.model.type === 'markdown'
            && /^## Exercises/m.test(c.model.sharedModel.getSource())).node.scrollIntoView()""")
        page.screenshot(path=shots / "exercises-closed.png")
        for k, (region, expected) in enumerate(zip(regions, web["solutions"])):
            heading = page.locator(".jp-Notebook .jp-Cell").nth(region["index"])
            heading.locator(".jp-showHiddenCellsButton").click()
            heading.scroll_into_view_if_needed()
            shown = solution_regions(page)[k]
            assert not shown["collapsed"] and all(u["visible"] for u in shown["under"]), shown
            texts, images = [], 0
            for u in shown["under"]:
                if u["type"] == "code":
                    t, n = cell_outputs(nb, u["index"])
                    texts.append(t)
                    images += n
            # a solution that times something or computes a measured value prints other numbers
            sources = "".join("".join(nb["cells"][u["index"]]["source"]) for u in shown["under"])
            timed = "perf_counter" in sources or bool(set(re.findall(r"\w+", sources)) & measured)
            norm = timing_free if timed else (lambda s: s)
            assert [norm(t) for t in texts] == [norm(t) for t in expected["outputs"]], (k, texts, expected)
            assert images == expected["images"], (k, images, expected)
        page.screenshot(path=shots / "exercises-opened.png")

        # figures: every image output decoded, as many as on the web page
        imgs = page.locator(".jp-OutputArea-output img")
        decoded = page.eval_on_selector_all(".jp-OutputArea-output img",
                                            "els => els.map(i => i.complete && i.naturalWidth > 0)")
        assert len(decoded) == web["figures"] and all(decoded), (len(decoded), web["figures"], decoded)
        for k in range(imgs.count()):
            imgs.nth(k).scroll_into_view_if_needed()
            imgs.nth(k).screenshot(path=shots / f"figure-{k + 1}.png")

        summary = {"chapter": chapter, "run_all_s": round(run_all_s, 1), "load_at_start": round(load, 2),
                   "figures_web": web["figures"], "figures_notebook": len(decoded),
                   "values_web": len(web["values"]), "values_notebook": len(values),
                   "values_measured_differing": sum(same_text(v) != same_text(w)
                                                    for v, w in zip(values, web["values"])),
                   "raw_markup": len(raw), "solutions": len(regions), "solutions_collapsed": len(regions)}
        (shots / "summary.json").write_text(json.dumps(summary, indent=1))
        assert not problems, "\n".join(problems)
    finally:
        # the chapter's kernel goes with its page, as when a learner closes the notebook
        page.evaluate(f"() => {NOTEBOOK}?.sessionContext?.shutdown()")
        context.close()
        changed = (ROOT / f"{chapter}.md").read_bytes() != source
        if changed:
            (ROOT / f"{chapter}.md").write_bytes(source)
    assert not changed, f"{chapter}.md was saved over while it ran (restored)"


def test_a_dashboard_link_opens_through_the_jupyter_servers_proxy(lab):
    """Chapter 3's link on a hub: session.dashboard_link() with the hub's prefix, a Dask
    dashboard on 127.0.0.1, fetched through the Jupyter server (jupyter-server-proxy)."""
    import dask
    from dask.distributed import Client, LocalCluster

    from geolesson import session

    origin = lab.base.removesuffix(PREFIX)
    with dask.config.set({"distributed.dashboard.link":
                          session.dashboard_link({"JUPYTERHUB_SERVICE_PREFIX": PREFIX})}):
        with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                          dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
            link = client.dashboard_link
            assert link.startswith(f"{PREFIX}proxy/") and link.endswith("/status"), link
            r = httpx.get(origin + link, params={"token": lab.token}, timeout=30, follow_redirects=True)
            assert r.status_code == 200 and "Dask" in r.text, (r.status_code, r.text[:300])

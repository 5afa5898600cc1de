"""Drive the book's chapters in JupyterLab as a learner does: a server, a browser, *Run All*.

Shared by tests/book/test_jupyterlab.py (what a learner sees) and benchmarks/memory.py (what
a Binder session holds). The server is set up by ``book/tools/setup_lab.sh``, the script
``binder/postBuild`` and ``make lab`` run (the ``.md`` chapters open as notebooks through
jupytext; jupyterlab-myst renders their markdown), and is served under a JupyterHub-style
prefix with ``JUPYTERHUB_SERVICE_PREFIX`` set, as on Binder and hubs. Its user settings
(a temporary folder) set ``windowingMode`` to ``none``: JupyterLab's windowed notebook
keeps off-screen cells out of the DOM, where a test could not see them; and turn autosave
off, which would write a run's notebook over the chapter's source.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.fixtures import ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PREFIX = "/user/learner/"  # as JupyterHub (and so Binder) serves a learner's server

NOTEBOOK = "window.jupyterapp.shell.currentWidget"
KERNEL_IDLE = f"{NOTEBOOK}.sessionContext.session?.kernel?.status === 'idle'"
# Run All is done when every code cell with code has run (or one failed: 'error') and every
# markdown cell with {eval} roles has its values (jupyterlab-myst stores them as the cell's
# user_expressions once the kernel answered).
RUN_DONE = f"""() => {{
  const cells = {NOTEBOOK}.content.widgets;
  if (!({KERNEL_IDLE})) return false;
  if (cells.some(c => c.model.type === 'code' && (c.model.outputs.toJSON() || [])
                      .some(o => o.output_type === 'error'))) return 'error';
  const codeDone = cells.every(c => c.model.type !== 'code' || !c.model.sharedModel.getSource().trim()
                               || c.model.executionCount !== null);
  const evalsDone = cells.every(c => {{
    if (c.model.type !== 'markdown') return true;
    const n = (c.model.sharedModel.getSource().match(/\\{{eval\\}}`[^`]*`/g) || []).length;
    return n === 0 || (c.model.getMetadata('user_expressions') || []).length === n;
  }});
  return codeDone && evalsDone;
}}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    """``jupyter lab`` on 127.0.0.1 for the repository, with a token, offline, as on a hub.

    ``env`` adds to (or, with None values, removes from) the server's environment, which
    its kernels inherit. Use as a context manager; ``base`` is the URL with the prefix. Its
    home (settings, log, the kernels' TMPDIR) is removed at exit, unless an exception left
    the block or the caller set ``keep`` (a test failed): then the settings and the log stay
    for the failure's report, and their folder is printed.
    """

    def __init__(self, env: dict[str, str | None] | None = None, python: str = sys.executable):
        self.python, self.extra_env = python, env or {}
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}{PREFIX}"
        self.home = Path(tempfile.mkdtemp(prefix="geolesson-lab-"))
        self.process: subprocess.Popen | None = None
        self.keep = False

    def __enter__(self) -> "LabServer":
        setup = subprocess.run(["bash", str(ROOT / "book" / "tools" / "setup_lab.sh")], capture_output=True,
                               text=True, env=dict(os.environ, PYTHON=self.python))
        if setup.returncode:
            raise RuntimeError(f"book/tools/setup_lab.sh failed:\n{setup.stdout}{setup.stderr}")
        tracker = self.home / "settings" / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
        tracker.parent.mkdir(parents=True)
        tracker.write_text(json.dumps({"windowingMode": "none"}))
        # no autosave (every 120 s): jupytext would write the executed notebook back over the chapter's .md
        docmanager = self.home / "settings" / "@jupyterlab" / "docmanager-extension" / "plugin.jupyterlab-settings"
        docmanager.parent.mkdir(parents=True)
        docmanager.write_text(json.dumps({"autosave": False}))
        (self.home / "tmp").mkdir()  # the kernels' TMPDIR, removed at exit
        env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(self.home / "settings"),
                   JUPYTERLAB_WORKSPACES_DIR=str(self.home / "workspaces"), JUPYTERHUB_SERVICE_PREFIX=PREFIX,
                   TMPDIR=str(self.home / "tmp"))
        for key, value in self.extra_env.items():
            env.pop(key, None) if value is None else env.__setitem__(key, value)
        cmd = [str(Path(self.python).parent / "jupyter"), "lab", "--no-browser", "--ip=127.0.0.1",
               f"--port={self.port}", f"--IdentityProvider.token={self.token}",
               f"--ServerApp.base_url={PREFIX}", f"--ServerApp.root_dir={ROOT}",
               "--LabApp.expose_app_in_browser=True", "--LabApp.extension_manager=readonly",
               "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        if os.geteuid() == 0:
            cmd.append("--allow-root")  # CI runs as root; the server listens on 127.0.0.1 only
        self.log = self.home / "jupyterlab.log"
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = time.monotonic() + 120
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited:\n{self.log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                self.keep = True
                self.__exit__()
                raise RuntimeError(f"JupyterLab did not answer within 120 s:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.base}api/status", params={"token": self.token}, timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.5)

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.keep or (exc and exc[0] is not None):
            shutil.rmtree(self.home / "tmp", ignore_errors=True)
            print(f"JupyterLab's settings and log kept for the failure's report: {self.home}")
        else:
            shutil.rmtree(self.home, ignore_errors=True)

    def url(self, path: str, workspace: str) -> str:
        """The URL that opens ``path`` (relative to the repository) in a fresh workspace."""
        return f"{self.base}lab/workspaces/{workspace}/tree/{path}?reset&token={self.token}"


def launch_browser(playwright):
    """The system Chromium (never Playwright's download)."""
    if not CHROMIUM.is_file():
        raise FileNotFoundError(f"{CHROMIUM} is missing: run `make system-deps`; `playwright install` is not used")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)


def open_notebook(page, lab: LabServer, path: str) -> None:
    """Open ``path`` in JupyterLab and wait until its notebook's kernel is idle."""
    page.goto(lab.url(path, workspace=Path(path).stem.replace("_", "-")))
    page.wait_for_function(f"() => window.jupyterapp && {NOTEBOOK} && {NOTEBOOK}.content "
                           f"&& {NOTEBOOK}.content.widgets && {KERNEL_IDLE}", timeout=120_000)


def run_all(page, timeout_s: float) -> tuple[bool | str, float, dict]:
    """*Run All* in the open notebook: (True, or 'error' if a cell failed; seconds; the notebook's JSON)."""
    t0 = time.monotonic()
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    done = page.wait_for_function(RUN_DONE, timeout=timeout_s * 1000, polling=1000).json_value()
    seconds = time.monotonic() - t0
    return done, seconds, page.evaluate(f"() => {NOTEBOOK}.content.model.toJSON()")

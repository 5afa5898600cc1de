"""Where learners run the book, tested as far as this machine allows (no Docker, no conda).

Binder (repo2docker): ``binder/postBuild`` and ``binder/start`` run as an unprivileged user
with a fresh HOME on a clean copy of the committed HEAD (``git archive``, as Binder clones
it), then chapter 1 executes (nbclient) against the mirror that ``start`` started.
Substitutions, because there is no conda here: the conda environment that repo2docker
would build from ``binder/environment.yml`` is a fresh virtual environment of that user
that sees the project venv's packages (a ``.pth`` line), so postBuild's
``pip install --no-deps -e .`` installs geolesson itself; PostgreSQL/PostGIS are Debian's.
The mirror's data is hard-linked from this checkout's mirror when it was built from the
same inputs, so postBuild's ``geolesson mirror build`` finds it up to date instead of
spending minutes simulating (``make test`` builds it once, as root, before the tests).

No root: the same user, with Debian's PostgreSQL/PostGIS programs on PATH and ``sudo`` and
``apt-get`` replaced by traps, runs ``make install mirror vendor`` (the steps ``make book``
runs before the book build: system-deps, the virtual environment and pip install, the
mirror data, MathJax), then starts the mirror and runs ``geolesson check``. Not repeated as
that user: installing every dependency from the package index (the project venv's are
reused) and rendering the whole book (``test_book`` does, with the same commands).
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import pytest

from tests.fixtures import ROOT

USER = "geolesson-learner"
RUN_TIMEOUT = 600


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_user() -> tuple[int, int]:
    """(uid, gid) of the unprivileged user: USER (created where missing) as root, else oneself."""
    if os.geteuid() != 0:
        return os.getuid(), os.getgid()
    try:
        pw = pwd.getpwnam(USER)
    except KeyError:
        if not shutil.which("useradd"):
            pytest.fail(f"running as root, the test needs `useradd` to create the unprivileged user {USER}")
        subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                        "--shell", "/bin/bash", USER], check=True)
        pw = pwd.getpwnam(USER)
    return pw.pw_uid, pw.pw_gid


def user_python() -> str:
    """A Python of this minor version that another user can run: the system's where it has one
    (this interpreter may live under /root, as pyenv's does), else this one's base interpreter."""
    system = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
    return str(system) if system.exists() else sys._base_executable


def link_tree(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` as hard links (instant, read-only use; a rebuild unlinks, never writes them)."""
    shutil.copytree(src, dst, copy_function=os.link, symlinks=True)


class Learner:
    """A clean copy of HEAD owned by an unprivileged user with a fresh HOME; runs commands as that user."""

    def __init__(self, work: Path, uid: int, gid: int):
        self.work, self.repo, self.home = work, work / "repo", work / "home"
        self.uid, self.gid = uid, gid
        self.traps = work / "traps"  # sudo and apt-get that record the call and fail
        self.env = {
            "HOME": str(self.home), "USER": pwd.getpwuid(uid).pw_name, "LANG": "C.UTF-8",
            "PATH": ":".join([str(self.repo / ".venv" / "bin"), *self.pg_bindirs(), str(self.traps),
                              "/usr/local/bin", "/usr/bin", "/bin"]),
            "GEOLESSON_MIRROR_PORT": str(free_port()), "GEOLESSON_MIRROR_PG_PORT": str(free_port()),
        }

    @staticmethod
    def pg_bindirs() -> list[str]:
        return sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)[:1]

    def run(self, *cmd: str, timeout: float = RUN_TIMEOUT, check: bool = True) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", USER, "--"] if os.geteuid() == 0 else []
        env = [f"{k}={v}" for k, v in self.env.items()]
        out = subprocess.run([*prefix, "env", "-i", *env, *cmd], cwd=self.repo, capture_output=True,
                             text=True, timeout=timeout)
        if check and out.returncode != 0:
            pytest.fail(f"{' '.join(cmd)} failed ({out.returncode}) as {self.env['USER']}:\n"
                        f"{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
        return out

    def trapped(self) -> list[str]:
        log = self.traps / "calls.log"
        return log.read_text().splitlines() if log.exists() else []


@pytest.fixture(scope="module")
def learner():
    uid, gid = ensure_user()
    work = Path(tempfile.mkdtemp(prefix="geolesson-learner-", dir="/tmp"))
    person = Learner(work, uid, gid)
    try:
        person.repo.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", "HEAD"], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(person.repo)], input=archive, check=True)
        person.home.mkdir()
        person.traps.mkdir()
        for tool in ("sudo", "apt-get"):
            trap = person.traps / tool
            trap.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{person.traps}/calls.log"\nexit 1\n')
            trap.chmod(0o755)
        # reuse what this checkout already has: mirror data built from the same inputs, MathJax
        from geolesson._home import mirror_home
        from geolesson.mirror import is_built

        linked = []
        if is_built():
            for name in ("files", "stac"):  # the built data only: not the database, its password or run state
                link_tree(mirror_home() / name, person.repo / "data" / "mirror" / name)
                linked.append(person.repo / "data" / "mirror" / name)
        if (ROOT / "vendor").is_dir():
            link_tree(ROOT / "vendor", person.repo / "vendor")
            linked.append(person.repo / "vendor")
        # the user owns every folder and the copied files; hard-linked files stay as they are
        # (readable by all): changing their owner would change this checkout's files too
        for path in [work, *work.rglob("*")]:
            if path.is_dir() or not any(path.is_relative_to(tree) for tree in linked):
                os.lchown(path, uid, gid)
        work.chmod(0o755)
        # the stand-in for Binder's conda environment: a venv of the user that sees the project's packages
        person.run(user_python(), "-m", "venv", str(person.repo / ".venv"))
        site = person.run(str(person.repo / ".venv" / "bin" / "python"), "-c",
                          "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
        pth = Path(site) / "project-venv-packages.pth"
        pth.write_text(sysconfig.get_paths()["purelib"] + "\n")
        os.chown(pth, uid, gid)
        yield person
    finally:
        if (person.repo / ".venv" / "bin" / "geolesson").exists():
            person.run("geolesson", "mirror", "stop", check=False, timeout=60)
        shutil.rmtree(work, ignore_errors=True)


def wait_for_mirror(person: Learner, deadline_s: float = 120) -> None:
    t_end = time.monotonic() + deadline_s
    while time.monotonic() < t_end:
        if person.run("geolesson", "mirror", "status", check=False, timeout=30).returncode == 0:
            return
        time.sleep(1)
    log = person.repo / "data" / "mirror" / "start.log"
    pytest.fail(f"the mirror did not come up within {deadline_s} s; start.log:\n"
                f"{log.read_text()[-3000:] if log.exists() else '(none)'}")


EXECUTE_CHAPTER_1 = """
import json, jupytext, nbclient
nb = jupytext.read("book/01_search.md")
nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": "book"}}).execute()
outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
# figures are the outputs of the cells that draw them
print(json.dumps({"figures": sum(any(k.endswith("image/png") for k in o.get("data", {})) for o in outputs),
                  "errors": [o.get("ename") for o in outputs if o.get("output_type") == "error"]}))
"""


@pytest.mark.mirror  # the learner's mirror is this checkout's built data
def test_binder_postbuild_and_start_then_chapter_1_executes(learner):
    learner.run("bash", "binder/postBuild")
    # the package is the clean copy's, installed by postBuild, not this checkout's
    where = learner.run("python", "-c", "import geolesson; print(geolesson.__file__)").stdout.strip()
    assert where.startswith(str(learner.repo / "src")), where
    prefix = learner.run("python", "-c", "import sys; print(sys.prefix)").stdout.strip()
    overrides = json.loads((Path(prefix) / "share/jupyter/lab/settings/overrides.json").read_text())
    viewers = overrides["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"]
    assert viewers["markdown"] == viewers["myst"] == "Jupytext Notebook"
    # the same script as `make lab` (book/tools/setup_lab.sh): offline, no news fetched
    assert overrides["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"

    # start launches the mirror in the background and execs the server it is given
    started = learner.run("bash", "binder/start", "echo", "notebook server here", timeout=60)
    assert started.stdout.strip() == "notebook server here"
    wait_for_mirror(learner)

    result = json.loads(learner.run("python", "-c", EXECUTE_CHAPTER_1).stdout.strip().splitlines()[-1])
    assert result["errors"] == [] and result["figures"] >= 1, result
    assert not learner.trapped()


@pytest.mark.mirror  # the learner's mirror is this checkout's built data
def test_make_without_root_uses_no_sudo(learner):
    out = learner.run("make", "install", "mirror", "vendor")
    assert "installing with apt-get" not in out.stdout
    assert not learner.trapped(), learner.trapped()
    assert (learner.repo / ".venv" / ".installed").exists()
    where = learner.run(".venv/bin/python", "-c", "import geolesson; print(geolesson.__file__)").stdout.strip()
    assert where.startswith(str(learner.repo / "src")), where
    learner.run(".venv/bin/geolesson", "mirror", "start", timeout=180)
    check = learner.run(".venv/bin/geolesson", "check", timeout=180)
    assert "FAILED" not in check.stdout, check.stdout
    # the private cluster belongs to the user: PostgreSQL ran without root or runuser
    assert (learner.repo / "data" / "mirror" / "pg").stat().st_uid == learner.uid


@pytest.mark.mirror  # the learner's mirror is this checkout's built data
def test_make_in_a_conda_environment_never_needs_apt(learner):
    """The Makefile's conda branch, with the user's venv standing in for the conda environment:
    CONDA_PREFIX set, PostgreSQL's programs inside it (links to Debian's), none on PATH."""
    prefix = learner.repo / ".venv"
    for program in ("pg_config", "pg_ctl", "initdb", "postgres"):
        link = prefix / "bin" / program
        if not link.exists():
            link.symlink_to(Path(learner.pg_bindirs()[0]) / program)
    env = dict(learner.env, CONDA_PREFIX=str(prefix), CONDA_DEFAULT_ENV="geolesson",
               PATH=":".join(p for p in learner.env["PATH"].split(":") if not p.startswith("/usr/lib/postgresql")))
    saved, learner.env = learner.env, env
    try:
        out = learner.run("make", "install", "mirror")
        assert str(prefix) in out.stdout and not learner.trapped(), (out.stdout, learner.trapped())
        assert (prefix / ".geolesson-installed").exists()
        found = learner.run("python", "-c",
                            "from geolesson.mirror.server.database import find_bindir; print(find_bindir())")
        assert found.stdout.strip() == str(prefix / "bin")
    finally:
        learner.env = saved


def test_launch_buttons_and_readme_badge_name_one_repository():
    import tomllib

    import yaml

    repo = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    org_name = repo["url"].removeprefix("https://github.com/").strip("/")
    badge = f"https://mybinder.org/v2/gh/{org_name}/{repo['branch']}?urlpath=lab/tree/book/01_search.md"
    assert badge in (ROOT / "README.md").read_text()
    urls = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]
    assert urls["Repository"] == repo["url"]
    assert (ROOT / "binder" / "environment.yml").resolve() == ROOT / "environment.yml"
    # Binder installs the environment before it copies the repository in: postBuild installs the package
    assert not re.search(r"^\s*-\s+-e\s", (ROOT / "environment.yml").read_text(), re.MULTILINE)

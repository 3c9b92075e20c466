"""Packaging: what `pip install` gives a user must work outside this checkout.

The wheel carries the runbook pages (the default alert links point at them), the `dev` extra
declares every library the tests import, and the pins are split into what the package needs
at run time and what the extras and tools add.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import zipfile
from importlib.metadata import PackageNotFoundError, distribution, packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from alerts.runbooks import RUNBOOKS

ROOT = Path(__file__).resolve().parent.parent
LOCAL = {"monitor", "detectors", "alerts", "tests", "vigil_runbooks"}
PROJECT = "vigil-monitor"


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(extra: str | None) -> set[str]:
    """Distributions the project requires with `extra` (None: the base install), following
    the extra's references to the project's own extras (`vigil-monitor[report]`)."""
    requires = [Requirement(r) for r in distribution(PROJECT).requires or []]
    wanted, pending, names = set(), [extra], set()
    while pending:
        current = pending.pop()
        if current in wanted:
            continue
        wanted.add(current)
        for req in requires:
            env = {"extra": current or ""}
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            if req.marker is None and current is not None:
                continue  # a base requirement, counted with extra None
            if norm(req.name) == PROJECT:
                pending.extend(req.extras)
            else:
                names.add(norm(req.name))
    if extra is not None:
        names |= declared(None)
    return names


def third_party_imports(folder: Path) -> dict[str, set[str]]:
    """Top-level module -> files, for every absolute import in `folder` that is neither the
    standard library nor this project."""
    found: dict[str, set[str]] = {}
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top not in sys.stdlib_module_names and top not in LOCAL:
                    found.setdefault(top, set()).add(path.name)
    return found


def test_the_dev_extra_declares_every_library_the_tests_import() -> None:
    """Each third-party module imported under tests/ comes from a distribution that
    `pip install -e .[dev]` installs as a declared requirement (not by luck, through another
    package's dependencies), so a clean install runs the suite."""
    dev = declared("dev")
    owners = packages_distributions()
    imports = third_party_imports(ROOT / "tests")
    assert {"pytest", "yaml", "sqlalchemy"} <= set(imports)  # the scan sees real imports
    missing = {
        module: sorted(files)
        for module, files in imports.items()
        if not {norm(d) for d in owners.get(module, [module])} & dev
    }
    assert not missing, f"imported by tests but not declared in the dev extra: {missing}"


def test_the_declared_check_tells_extras_apart() -> None:
    """The helper above is not vacuous: the base install lacks the test tools and the
    optional report libraries that `dev` adds."""
    base, dev = declared(None), declared("dev")
    assert {"pytest", "pyyaml", "evidently", "matplotlib"} <= dev - base
    assert {"sqlalchemy", "pydantic"} <= base


def pins(path: Path) -> dict[str, str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return {
        norm(line.split("==")[0]): line.split("==")[1]
        for line in lines
        if line.strip() and not line.startswith("#")
    }


def runtime_closure() -> set[str]:
    """The base requirements and, recursively, what they require (as installed here)."""
    seen: set[str] = set()
    pending = [Requirement(r) for r in distribution(PROJECT).requires or [] if "extra" not in r]
    while pending:
        req = pending.pop()
        if req.marker is not None and not any(
            req.marker.evaluate({"extra": e}) for e in (req.extras or {""})
        ):
            continue
        if norm(req.name) in seen:
            continue
        seen.add(norm(req.name))
        extras = req.extras
        for text in distribution(req.name).requires or []:
            child = Requirement(text)
            if child.marker is None or any(
                child.marker.evaluate({"extra": e}) for e in (*extras, "")
            ):
                pending.append(Requirement(str(child).split(";")[0]))
    return seen


def test_constraints_split_into_runtime_and_optional() -> None:
    """runtime.txt pins exactly what a plain install pulls in; optional.txt the rest, with no
    name in both, and every pin of an installed distribution is its installed version."""
    runtime = pins(ROOT / "constraints" / "runtime.txt")
    optional = pins(ROOT / "constraints" / "optional.txt")
    assert not set(runtime) & set(optional)
    assert set(runtime) == runtime_closure()
    installed = 0
    for name, version in {**runtime, **optional}.items():
        try:
            found = distribution(name).version
        except PackageNotFoundError:
            continue  # pinned for an extra this environment did not install
        assert found == version, name
        installed += 1
    assert installed >= len(runtime)


@pytest.mark.slow
def test_the_wheel_ships_the_runbooks_and_links_resolve_when_installed(tmp_path: Path) -> None:
    """Build the wheel, install it (not editable) into a fresh directory, and import it from
    there: every default runbook link is a file inside that installed copy."""
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path / "dist", ROOT],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = (tmp_path / "dist").glob("vigil_monitor-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for page in {*RUNBOOKS.values(), "README.md"}:
        assert f"vigil_runbooks/{page}" in names, page
    target = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", target, wheel],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "import alerts.runbooks as r\n"
        "from urllib.parse import urlsplit\n"
        "from urllib.request import url2pathname\n"
        "print(r.__file__)\n"
        "for kind in [*r.RUNBOOKS, 'no_such_kind']:\n"
        "    print(url2pathname(urlsplit(r.runbook_url(kind, None)).path))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, str(target)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    module, *pages = result.stdout.splitlines()
    assert Path(module).is_relative_to(target)  # the installed copy, not this checkout
    assert len(pages) == len(RUNBOOKS) + 1
    for page in pages:
        assert Path(page).is_relative_to(target.resolve()), page
        assert Path(page).is_file(), page

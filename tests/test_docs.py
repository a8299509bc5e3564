"""The API reference (docs/reference/, built by ``mkdocs build --strict``): every public name
of every namespace is on its page, every name of workhorse's own has a docstring with an
example, and the site builds with warnings as errors."""

from __future__ import annotations

import importlib
import inspect
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import workhorse
from workhorse import _names

ROOT = Path(__file__).resolve().parent.parent
PAGES = {
    "workhorse": "workhorse",
    "processes": "workhorse.processes",
    "threads": "workhorse.threads",
}


def _own(namespace: str, name: str) -> bool:
    """Whether workhorse defines ``name`` (not a stdlib name it re-exports unchanged)."""
    entry = _names.TABLE[name]
    source = entry.source(namespace)
    while source in (".processes", ".threads"):
        namespace = source[1:]
        source = entry.source(namespace)
    return source is not None and (source.startswith("._") or source == "")


@pytest.mark.parametrize("namespace", sorted(PAGES))
def test_every_public_name_is_on_its_page(namespace: str) -> None:
    module = importlib.import_module(PAGES[namespace])
    page = (ROOT / "docs" / "reference" / f"{namespace}.md").read_text()
    for name in module.__all__:
        if _own(namespace, name) and name != "excepthook":
            assert f"::: {PAGES[namespace]}.{name}\n" in page, name
        else:
            assert f"| `{name}` |" in page, name


@pytest.mark.parametrize("namespace", sorted(PAGES))
def test_workhorse_s_own_names_have_a_docstring_with_an_example(namespace: str) -> None:
    module = importlib.import_module(PAGES[namespace])
    for name in module.__all__:
        if not _own(namespace, name) or name in ("excepthook", "TIMEOUT_MAX"):
            continue
        doc = inspect.getdoc(getattr(module, name)) or ""
        assert doc, f"{PAGES[namespace]}.{name} has no docstring"
        assert "Example" in doc or ">>>" in doc, f"{PAGES[namespace]}.{name}: no example"


def test_the_reference_builds_with_warnings_as_errors(tmp_path: Path) -> None:
    mkdocs = shutil.which("mkdocs", path=os.path.dirname(sys.executable))
    if mkdocs is None:
        pytest.skip('mkdocs is not installed (pip install -e ".[docs]")')
    result = subprocess.run(
        [mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        check=False, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    page = (tmp_path / "site" / "reference" / "workhorse" / "index.html").read_text()
    assert "ProcessPoolExecutor" in page
    assert "insights" in page
    index = (tmp_path / "site" / "reference" / "index.html").read_text()
    assert "Differences from the stdlib" in index
    assert "BrokenResourceError" in index  # the README's table, included
    assert workhorse.__name__ in page

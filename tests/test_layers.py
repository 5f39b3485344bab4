"""The layers of docs/design.md, held by import-linter's contracts in pyproject.toml:
the faces over the agent over ops over venues over net over core, the sandbox apart,
the dashboard off the command line's and the agent's internals, no textual below the
faces.  And proof that the contracts can fail: a copy of the tree with one bad import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

LINT = Path(sys.executable).with_name("lint-imports")


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(root)}
    return subprocess.run([str(LINT), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=120)


def copy_tree(dst: Path) -> Path:
    for name in ("vault", "tui"):
        shutil.copytree(REPO / name, dst / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", dst / "pyproject.toml")
    return dst


def test_lint_imports_is_installed() -> None:
    assert LINT.exists(), "import-linter is a test dependency: `make test` installs it"


def test_the_tree_keeps_every_contract() -> None:
    done = lint(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize("module,bad_import,contract", [
    ("vault/core/model.py", "import vault.ops.views", "Layers"),
    ("vault/ops/views.py", "from vault.cli import render", "Layers"),
    ("vault/agent/server.py", "import vault.cli.main", "Layers"),
    ("vault/sandbox/server.py", "import vault.core.errors", "The sandbox imports no layer"),
    ("tui/app.py", "import vault.agent.server", "The dashboard uses the service layer"),
    ("vault/net/http.py", "import textual", "Below the faces nothing imports textual"),
])
def test_one_bad_import_in_a_copy_of_the_tree_breaks_a_contract(tmp_path: Path, module: str, bad_import: str,
                                                                contract: str) -> None:
    root = copy_tree(tmp_path)
    target = root / module
    text = target.read_text()
    target.write_text(text.replace("from __future__ import annotations\n", f"from __future__ import annotations\n\n{bad_import}\n", 1))
    assert target.read_text() != text
    done = lint(root)
    assert done.returncode != 0, done.stdout
    assert contract in done.stdout.split("Broken contracts", 1)[1], done.stdout

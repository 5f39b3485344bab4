"""Where the format work meets the commands: `keyward unlock` opens a vault as every
command does (a v1 vault is rewritten as v2 before the agent, which has no passphrase,
holds it), `import --allow-kdf-cost` reaches the bundle's budget, and `import` never
opens a FIFO or a device for reading."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from vault.core import fileformat as ff
from vault.core.errors import FileUnusable, KdfCostRefused
from vault.core.service import VaultService

from .conftest import PASSPHRASE, SMALL_KDF, KeywardCLI
from .test_agent import agent, short_runtime  # noqa: F401
from .test_format_v2 import VECTOR_PASSPHRASE, VECTORS


def test_unlock_rewrites_a_v1_vault_as_v2_before_the_agent_holds_it(kw: KeywardCLI, agent, tmp_path: Path) -> None:  # noqa: F811
    kw.vault_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    kw.vault_path.write_bytes((VECTORS / "vector-v1.kw").read_bytes())
    kw.vault_path.chmod(0o600)
    kw.passphrase_file.write_text(VECTOR_PASSPHRASE + "\n")
    assert kw.vault_path.read_bytes()[8] == 1
    done = kw("unlock")
    assert done.code == 0, done.both
    assert kw.vault_path.read_bytes()[8] == 2, done.both
    assert [line for line in done.err.splitlines() if "rewrote" in line and "format v2" in line], done.err
    assert kw("list", passphrase=False).code == 0  # and the agent serves it


def test_import_refuses_a_fifo_or_a_device_without_hanging(vault: KeywardCLI, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    for path in (str(fifo), "/dev/zero"):
        done = vault("import", path, "--label", "x", timeout=30)
        assert done.code == FileUnusable.exit_code and "not a regular file" in done.err, done.both


def test_import_allow_kdf_cost_reaches_the_bundle_budget(vault: KeywardCLI, tmp_path: Path, monkeypatch) -> None:
    """In-process, with the bundle budget shrunk below SMALL_KDF: without the flag the
    bundle is refused before any derivation; with it, it is imported."""
    from vault.cli.main import main
    from vault.ops import bundle

    other = VaultService.create(tmp_path / "other.kw", PASSPHRASE, SMALL_KDF)
    from vault.core.model import Account

    other.add_account(Account(label="hs", venue="hypersolutions", base_url="http://127.0.0.1:1", fields={"api_key": "k" * 32}))
    blob = bundle.seal(list(other.accounts), "a bundle passphrase for the test", SMALL_KDF, 0.0)
    path = tmp_path / "b.kwb"
    path.write_bytes(blob)
    secret = tmp_path / "bundle-pass"
    secret.write_text("a bundle passphrase for the test\n")
    monkeypatch.setattr(ff, "BUNDLE_BUDGET", ff.KdfBudget(1024, 1024, "bundle"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    args = ["--vault", str(vault.vault_path), "--passphrase-file", str(vault.passphrase_file),
            "import", str(path), "--bundle-passphrase-file", str(secret)]
    assert main(args) == KdfCostRefused.exit_code
    assert main(args + ["--allow-kdf-cost"]) == 0
    assert [a.label for a in VaultService.unlock(vault.vault_path, PASSPHRASE).accounts] == ["hs"]

"""keyward's non-UI half, in layers from the ground up: core, net, venues, ops, then the
faces (cli, agent, api, monitor); the sandbox apart.  docs/design.md draws them and
pyproject.toml's import-linter contracts hold them.

Importing `vault` is cheap; the Python API for scripts lives in `vault.api` and is
loaded on first use: `vault.auth(label)`, `vault.client(label)`, `vault.open_vault()`.
"""

from __future__ import annotations

_API = frozenset({"auth", "client", "open_vault", "KeywardAuth"})


def __getattr__(name: str) -> object:  # (no `typing`: every CLI call imports this module)
    # Lazy, so that `import vault` (and every CLI command) does not pay for httpx.
    if name in _API:
        from vault import api

        return getattr(api, name)
    raise AttributeError(f"module 'vault' has no attribute {name!r}")

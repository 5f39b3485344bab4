"""keyward's non-UI half: the vault, the venues, the sandbox and the CLI.

Importing `vault` is cheap; the Python API for scripts lives in `vault.api`.
"""

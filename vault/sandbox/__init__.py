"""A local HTTP server that behaves like the venues' auth endpoints (see docs/sandbox.md)."""

from vault.sandbox.server import Sandbox, SandboxConfig, SandboxError, main, serve

__all__ = ["Sandbox", "SandboxConfig", "SandboxError", "main", "serve"]

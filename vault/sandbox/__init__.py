"""A local HTTP server that behaves like the venues' auth endpoints (see docs/sandbox.md).

It stands apart: it imports nothing of keyward (it must not agree with the providers
by sharing their code), and only the command line and the demo start it."""

from vault.sandbox.server import Sandbox, SandboxConfig, SandboxError, main, serve

__all__ = ["Sandbox", "SandboxConfig", "SandboxError", "main", "serve"]

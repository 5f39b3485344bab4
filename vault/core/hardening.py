"""What ssh-agent, gpg-agent and KeePassXC do to a process that holds keys: no core
dumps, and not dumpable, which also stops other processes of the same user from
ptrace-attaching, reading /proc/PID/mem or reopening its descriptors through
/proc/PID/fd.  Used by the unlock agent and the dashboard.  Best effort: a platform
without prctl keeps only the core limit, and root can still read everything."""

from __future__ import annotations

import sys

PR_SET_DUMPABLE = 4
PR_GET_DUMPABLE = 3


def harden_process() -> bool:
    """Returns True when the process is now non-dumpable with core files off."""
    import resource

    ok = True
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ValueError, OSError):
        ok = False
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
            return False
        return ok and libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False

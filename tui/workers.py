"""Background work for the dashboard: every venue call and every vault write runs in a
thread worker so that a slow venue or a slow disk never freezes the screen.

A `Job` names its work in words (`description`): Textual would otherwise build a worker's
description from the repr of its arguments, and this is the one place a secret could slip
into a worker's repr or a devtools log.  Jobs take no secret arguments; they close over
labels and look secrets up inside the thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from vault.core.errors import KeywardError

if TYPE_CHECKING:  # pragma: no cover
    from textual.app import App
    from textual.worker import Worker


@dataclass(eq=False)
class Job:
    """One unit of background work and what to do with its outcome on the UI thread."""

    description: str  # shown in notifications and worker reprs: labels and verbs only
    work: Callable[[], Any] = field(repr=False)
    done: Callable[[Any], None] | None = field(default=None, repr=False)
    failed: Callable[[BaseException], None] | None = field(default=None, repr=False)
    key: tuple[str, ...] | None = None  # (verb, label): refuse a second one while this runs
    quiet: bool = False  # background refreshes: failures go to the row, not a toast

    def __repr__(self) -> str:
        return f"Job({self.description!r})"


def error_line(exc: BaseException) -> str:
    """What the user reads: str() of a KeywardError, exactly as the CLI prints it (minus
    the program name).  Anything else is a bug and its message may hold a value, so only
    its type is shown."""
    if isinstance(exc, KeywardError):
        return str(exc)
    return f"internal error ({type(exc).__name__}); please report it"


class Jobs:
    """The app's running jobs, keyed by worker, each tagged with the session that started
    it so that a result arriving after a lock is dropped instead of shown."""

    def __init__(self) -> None:
        self._running: dict[Worker, tuple[Job, object]] = {}

    def busy(self, key: tuple[str, ...] | None) -> bool:
        return key is not None and any(job.key == key for job, _ in self._running.values())

    def start(self, app: App, job: Job, session: object) -> Worker:
        worker = _run(app, job)
        self._running[worker] = (job, session)
        return worker

    def finish(self, worker: Worker) -> tuple[Job | None, object]:
        return self._running.pop(worker, (None, None))

    def __len__(self) -> int:
        return len(self._running)


def _run(app: App, job: Job) -> Worker:
    """A thread worker owned by the app, so that it outlives the screen that started it."""
    return app.run_worker(
        job.work,
        name=job.description,
        group="keyward",
        description=job.description,
        thread=True,
        exit_on_error=False,
    )

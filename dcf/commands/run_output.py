"""What ``dcf run``, ``dcf rerate`` and ``dcf replay`` show while a flow runs.

Prefect writes every log line to the terminal through its own console handler: the flow's start and end, each
task's "Finished in state Completed()", and our per-row warnings, on a second rich console that knows nothing of our
progress bar, so the two overwrote each other. For the length of a run :func:`run_console` takes Prefect's console
handlers off the loggers and puts one :class:`RunConsoleHandler` in their place, which prints through the same rich
console as the bar (rich draws the bar below what is printed) and shows, by verbosity:

- ``--quiet``: errors only (a file that failed, a run that failed); no bar.
- default: one line per file (its counts), warnings that concern a file or the night (a refused entry, an inbox
  folder no source reads, a control total), errors; the bar on a terminal says what the run is waiting for.
- ``--verbose``: every log line as Prefect writes it, with time, level and logger, per-row failures included.

The flows tag their lines with ``extra={"dcf": ...}``: ``line`` (shown by default), ``row`` (one failing row: only
with --verbose), ``stage`` (what the run is doing now: moves the bar, shown with --verbose). Untagged INFO lines are
Prefect's own and show only with --verbose; warnings and errors show unless tagged ``row``. Prefect's API log handler
is left alone: the Prefect UI keeps the whole log whatever the terminal shows.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.text import Text

QUIET, NORMAL, VERBOSE = 0, 1, 2
#: a log line longer than this is cut on the terminal (a 32,000-character cell quoted in a message); the run log
#: and `dcf failures` keep the whole message
MAX_LINE = 2000

#: loggers whose console handler the run takes over (Prefect's logging.yml gives these a PrefectConsoleHandler)
_TAKEN_FROM = ("", "fastapi", "uvicorn")


def output_level(quiet: bool, verbose: bool) -> int:
    """The verbosity --quiet and --verbose ask for; both at once is a usage error (exit 2)."""
    if quiet and verbose:
        from dcf.commands.common import EXIT_USAGE, fail

        fail("--quiet and --verbose contradict each other; give one of them", EXIT_USAGE)
    return QUIET if quiet else VERBOSE if verbose else NORMAL


def shown_at(record: logging.LogRecord, level: int) -> bool:
    """Whether a log record reaches the terminal at this verbosity (the table in the module docstring)."""
    tag = getattr(record, "dcf", None)
    if record.levelno < logging.INFO:
        return False
    if level >= VERBOSE:
        return True
    if level <= QUIET:
        return record.levelno >= logging.ERROR
    if record.levelno >= logging.WARNING:
        return tag != "row"
    return tag == "line"


class RunConsoleHandler(logging.Handler):
    """Prints log records through ``console`` (the progress bar's), filtered by verbosity; records tagged ``stage``
    also go to ``on_stage`` (the bar's description). Text is printed as text: markup-like brackets and escape
    sequences in a file name or a cell never become terminal markup."""

    def __init__(self, console: Console, level: int, on_stage: Callable[[str], None] | None = None) -> None:
        super().__init__(logging.INFO)
        self.console = console
        self.verbosity = level
        self.on_stage = on_stage
        self.tracebacks = os.environ.get("DCF_TRACEBACKS") == "1"
        self.setFormatter(
            logging.Formatter("%(asctime)s.%(msecs)03d | %(levelname)-7s | %(where)s - %(message)s", "%H:%M:%S")
        )

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if getattr(record, "dcf", None) == "stage" and self.on_stage is not None:
                self.on_stage(record.getMessage())
            if not shown_at(record, self.verbosity):
                return
            self.console.print(self.render(record), soft_wrap=True, highlight=False)
        except Exception:  # noqa: BLE001 - logging must never stop the run
            self.handleError(record)

    def render(self, record: logging.LogRecord) -> Text:
        if self.verbosity >= VERBOSE:
            saved = record.exc_info, record.exc_text, record.stack_info
            if not self.tracebacks:  # the traceback stays in Prefect's run log unless DCF_TRACEBACKS=1
                record.exc_info, record.exc_text, record.stack_info = None, None, None
            task, flow = getattr(record, "task_run_name", None), getattr(record, "flow_run_name", None)
            record.where = f"Task run '{task}'" if task else f"Flow run '{flow}'" if flow else record.name
            try:
                line = self.format(record)
            finally:
                record.exc_info, record.exc_text, record.stack_info = saved
            style = "red" if record.levelno >= logging.ERROR else "yellow" if record.levelno >= logging.WARNING else ""
            return Text(_printable(line), style=style)
        message = _printable(record.getMessage())
        if record.levelno >= logging.ERROR:
            return Text.assemble(("error: ", "bold red"), message)
        if record.levelno >= logging.WARNING:
            return Text.assemble(("warning: ", "yellow"), message)
        return Text(message)


def _printable(text: str) -> str:
    """Control characters (an escape sequence in a file name, a carriage return in a cell) shown as \\x.. escapes,
    so a log line cannot move the cursor or recolour the terminal; newlines of a multi-line message are kept; a
    line over MAX_LINE characters is cut, saying how long it was."""
    if len(text) > MAX_LINE:
        text = f"{text[:MAX_LINE]}… ({len(text):,} characters; the whole line is in the run log)"
    if text.isprintable():
        return text
    return "".join(
        ch if ch.isprintable() or ch in "\n\t" else ch.encode("unicode_escape").decode("ascii") for ch in text
    )


@contextmanager
def run_console(console: Console, level: int, on_stage: Callable[[str], None] | None = None) -> Iterator[None]:
    """For the block: Prefect's console handlers replaced by one :class:`RunConsoleHandler` on ``console``;
    restored on the way out. Call it after Prefect is imported (importing Prefect sets up its logging)."""
    from prefect.logging.handlers import PrefectConsoleHandler

    ours = RunConsoleHandler(console, level, on_stage)
    taken: list[tuple[logging.Logger, logging.Handler]] = []
    for name in _TAKEN_FROM:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if isinstance(handler, PrefectConsoleHandler):
                logger.removeHandler(handler)
                taken.append((logger, handler))
    root = logging.getLogger()
    root.addHandler(ours)
    quietened = _quieten_libraries()
    try:
        yield
    finally:
        root.removeHandler(ours)
        for logger, handler in taken:
            logger.addHandler(handler)
        for logger, was in quietened:
            logger.setLevel(was)


def _quieten_libraries() -> list[tuple[logging.Logger, int]]:
    """Library notices that are not the user's business during a run: the ``cpi`` package's "CPI data is out of
    date" (we deflate with the series it ships, on purpose: docs/adr/0005-constant-dollars.md)."""
    quietened = []
    for name in ("cpi",):
        logger = logging.getLogger(name)
        quietened.append((logger, logger.level))
        logger.setLevel(logging.ERROR)
    return quietened


class RunProgress:
    """What the run is doing, on the terminal: a rich progress bar on stderr (the console the log lines use, so they
    print above the bar and never through it) when stderr is a terminal and the run is not --quiet. Its description
    says what the run waits for: Prefect's local server, the flow run's start, the inbox listing, each file, the
    publish. Without a bar, the same moments are the log lines (one per file) and local_prefect's notices."""

    def __init__(self, console: Console, level: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = console
        self.level = level
        self.bar: Progress | None = None
        if console.is_terminal and level > QUIET:
            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            )
            self.task = self.bar.add_task("starting", total=None)

    def stage(self, text: str) -> None:
        """The bar's description: what the run is doing now."""
        if self.bar is not None:
            self.bar.update(self.task, description=_printable(text))

    def notify(self, text: str) -> None:
        """A notice from local_prefect (starting the server, still starting after 30 s): on the bar when there is
        one, else a line (not with --quiet)."""
        if self.bar is not None:
            self.stage(text)
            if text.startswith("still"):
                self.console.print(Text(_printable(text)), soft_wrap=True, highlight=False)
        elif self.level > QUIET:
            self.console.print(Text(_printable(text)), soft_wrap=True, highlight=False)

    def file_done(self, done: int, total: int, batch) -> None:
        if self.bar is not None:
            what = "loading and publishing" if done >= total else f"{batch.file_key}: {batch.status}"
            self.bar.update(self.task, total=total, completed=done, description=_printable(what))


@contextmanager
def progress_bar(level: int, register: Callable[[Callable], None]) -> Iterator[RunProgress]:
    """A :class:`RunProgress` on stderr for the block, its per-file hook given to ``register`` (flows.nightly's
    on_file_done)."""
    from dcf.commands.common import err

    progress = RunProgress(err, level)
    register(progress.file_done)
    if progress.bar is None:
        yield progress
        return
    with progress.bar:
        yield progress

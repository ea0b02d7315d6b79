"""What ``dcf run`` shows, as a person sees it: one line per file by default, --verbose and --quiet, and on a real
terminal (a pseudo-terminal rendered by pyte, a terminal emulator) a progress bar that says what it waits for and
never overwrites a log line or the summary table."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import shutil
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pyte
import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
DCF = [sys.executable, "-m", "dcf.cli"]
FILE_LINE = re.compile(
    r"^(?P<file>[A-Z]+/\S+) \[[^\]]+\]: \d+ read = \d+ loaded \+ \d+ quarantined \+ \d+ skipped \(\d+\.\d\d s\)$"
)
#: lines that are Prefect's own or one failing row: only --verbose shows them
CHATTER = ("Finished in state", "Beginning flow run", "CPI data is out of date", "cannot interrupt")
ROW_LINE = re.compile(r" row \d+: ")


def _two_agencies(sample_inbox, tmp_path: Path) -> tuple[Path, list[str]]:
    """GAMI's CSVs and MOD's workbooks and programme list from the sample inbox: every kind of line, in seconds."""
    inbox, _ = sample_inbox
    dest = tmp_path / "inbox"
    for folder in ("gami", "mod"):
        shutil.copytree(inbox / folder, dest / folder)
    keys = sorted(f"{p.parent.name.upper()}/{p.name}" for p in dest.glob("*/*") if p.is_file())
    return dest, keys


def dcf(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([*DCF, *args], capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)


def test_default_is_one_line_per_file_verbose_adds_rows_quiet_only_totals(sample_inbox, tmp_path):
    inbox, keys = _two_agencies(sample_inbox, tmp_path)
    where = ["--inbox", str(inbox), "--warehouse", str(tmp_path / "wh.duckdb")]

    default = dcf("run", *where)
    assert default.returncode == 0, default.stderr[-3000:]
    lines = default.stderr.splitlines()
    per_file = [m["file"] for m in map(FILE_LINE.match, lines) if m]
    assert sorted(per_file) == keys  # exactly one line per file
    assert not [line for line in lines if any(c in line for c in CHATTER) or ROW_LINE.search(line)], lines
    assert "┃ file" in default.stdout and "rows " in default.stdout

    verbose = dcf("run", *where, "--force", "--verbose")
    assert verbose.returncode == 0, verbose.stderr[-3000:]
    assert "Finished in state Completed()" in verbose.stderr
    assert re.search(r"\| WARNING \| Task run 'process GAMI/\S+' - GAMI/\S+ row \d+: ", verbose.stderr)
    assert "CPI data is out of date" not in verbose.stderr  # the shipped CPI series is used on purpose (ADR 0005)

    quiet = dcf("run", *where, "--force", "--quiet")
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    assert quiet.stderr == ""
    assert quiet.stdout.splitlines()[0].startswith(f"{len(keys)} file(s) processed, 0 unchanged, 0 failed; rows ")
    assert "┃" not in quiet.stdout

    both = dcf("run", *where, "--quiet", "--verbose")
    assert both.returncode == 2 and both.stderr.startswith("error: --quiet and --verbose")


def _run_on_a_terminal(args: list[str], env: dict, columns: int = 150, timeout: float = 900) -> tuple[bytes, int]:
    """``dcf`` with stdin, stdout and stderr on one pseudo-terminal of ``columns``, as in a person's shell: what
    it wrote, and its exit code."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT, close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the terminal's last writer has gone
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        return b"".join(chunks), proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)


def test_on_a_terminal_the_bar_says_what_it_waits_for_and_overwrites_nothing(sample_inbox, tmp_path):
    inbox, keys = _two_agencies(sample_inbox, tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "COLUMNS", "LINES")}
    env |= {"TERM": "xterm-256color", "PREFECT_HOME": str(tmp_path / "prefect")}  # dcf starts its own server
    raw, code = _run_on_a_terminal(
        [*DCF, "run", "--inbox", str(inbox), "--warehouse", str(tmp_path / "wh.duckdb")], env
    )
    assert code == 0, raw[-3000:]
    text = raw.decode("utf-8", "replace")
    # while Prefect starts, the bar says so (a first start on a fresh PREFECT_HOME takes seconds)
    assert "starting Prefect's local server" in text
    assert "anonymous usage data" not in text  # no telemetry, so no first-run notice (flows/__init__.py)

    screen = pyte.Screen(150, 400)  # tall enough that nothing scrolls away: the whole run stays on the screen
    pyte.Stream(screen).feed(text.replace("\n", "\r\n") if "\r\n" not in text else text)
    shown = [line.rstrip() for line in screen.display if line.strip()]
    per_file = [m["file"] for m in map(FILE_LINE.match, shown) if m]
    assert sorted(per_file) == keys, "\n".join(shown)  # each file's line whole, on a line of its own
    table = [line for line in shown if line[:1] in "┏┃┡│└"]
    assert table[0].startswith("┏") and table[-1].startswith("└")
    assert all(line.endswith(line[0].translate(str.maketrans("┏┃┡│└", "┓┃┩│┘"))) for line in table), table
    assert len([line for line in table if line.startswith("│")]) == len(keys)
    assert not [line for line in shown if "━╸" in line or "MofN" in line or re.search(r"\d+/\d+ \d:\d\d:\d\d$", line)]
    assert shown[-1].startswith("See what failed and why") or shown[-1].startswith("warehouse:")

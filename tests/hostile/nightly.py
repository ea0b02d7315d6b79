"""The hostile corpus through real nights: batches of its files, each mixed with the whole sample inbox, through
``dcf run`` (a real process, its own Prefect server, a fresh warehouse per night), judged as a user would:

- a night publishes (exit 0 or 4) whatever the hostile files are: no night publishes nothing because of one file
  (exit 1), and no process dies (a signal, exit 134 from an abort);
- the sample files' rows are what they are on a night of the sample alone (per file: status and counts, and the sum
  of the loaded US$ amounts), except a sample edition that a hostile copy with other figures also claims (then both
  fail, naming each other: flows/editions.py);
- every current file reconciles (read = loaded + quarantined + skipped: no row lost unseen);
- no bytes from outside the inbox were read: no file outside it (link targets) has its hash among the loaded files.

    python -m tests.hostile.nightly --count 2000 --batch 100   # build a corpus, run its nights, print a summary

Exit status 1 when any night broke a promise. ``make fuzz`` runs it after tests/hostile/run.py.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "tests" / "fixtures" / "reference"
PUBLISHED = (0, 4)  # dcf run: published; published, some files failed


def dcf_run(inbox: Path, warehouse: Path, timeout: float = 3600) -> subprocess.CompletedProcess:
    env = {**os.environ, "DCF_REFERENCE": str(REFERENCE), "COLUMNS": "200"}
    env.pop("PREFECT_API_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "dcf.cli", "run", "--inbox", str(inbox), "--warehouse", str(warehouse)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=timeout,
    )


def file_state(warehouse: Path) -> dict[str, tuple]:
    """Per current file: status, the four counts and the sum of its loaded US$ amounts (rounded to the cent)."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            """SELECT f.file_key, f.status, f.rows_read, f.rows_loaded, f.rows_quarantined, f.rows_skipped,
                      round(coalesce(sum(l.amount_usd), 0), 2)
               FROM audit_source_file f LEFT JOIN fact_funding_line l USING (file_key)
               WHERE f.is_current GROUP BY ALL"""
        ).fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}


def unreconciled(warehouse: Path) -> list[str]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return [r[0] for r in con.execute("SELECT file_key FROM file_reconciliation WHERE NOT reconciles").fetchall()]


def loaded_hashes(warehouse: Path) -> set[str]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {r[0] for r in con.execute("SELECT file_hash FROM audit_source_file").fetchall()}


def outside_hashes(outside: Path) -> set[str]:
    """sha256 of every regular file under ``outside`` (the corpus's folder of link targets)."""
    found = set()
    for path in outside.rglob("*") if outside.is_dir() else []:
        if path.is_file() and not path.is_symlink():
            found.add(hashlib.sha256(path.read_bytes()).hexdigest())
    return found


def judge_night(warehouse: Path, baseline: dict[str, tuple], result, outside: set[str]) -> list[str]:
    problems = []
    if result.returncode not in PUBLISHED:
        what = "died" if result.returncode < 0 or result.returncode > 4 else "published nothing"
        tail = (result.stderr.strip().splitlines() or [""])[-1][:300]
        return [f"the night {what} (exit {result.returncode}): {tail}"]
    if "Traceback" in result.stdout + result.stderr:
        problems.append("a traceback reached the user")
    state = file_state(warehouse)
    for key, expected in baseline.items():
        got = state.get(key)
        if got == expected:
            continue
        if got is not None and got[0] == "failed" and key.startswith("SIPRI/"):
            continue  # a hostile copy of this edition with other figures: both fail by design (checked below)
        problems.append(f"sample file {key}: {got} instead of {expected}")
    problems += [f"{key} does not reconcile" for key in unreconciled(warehouse)]
    if leaked := loaded_hashes(warehouse) & outside:
        problems.append(f"{len(leaked)} file(s) from outside the inbox were read")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=None, help="about this many hostile files (default: one per kind)")
    parser.add_argument("--batch", type=int, default=100, help="hostile files per night")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from samples import generate_inbox
    from tests.hostile.corpus import build

    with tempfile.TemporaryDirectory(prefix="dcf-nights-") as tmp:
        root = Path(tmp)
        samples = root / "samples"
        generate_inbox(samples, seed=42)
        cases = build(samples, root, seed=args.seed, count=args.count)
        print(f"built {len(cases)} hostile files under {root}", file=sys.stderr)
        started = time.perf_counter()
        base_inbox = root / "base" / "inbox"
        shutil.copytree(samples, base_inbox)
        base = dcf_run(base_inbox, root / "base" / "wh.duckdb")
        if base.returncode not in PUBLISHED:
            print(f"the sample inbox alone did not publish (exit {base.returncode}):\n{base.stderr[-2000:]}")
            return 1
        baseline = file_state(root / "base" / "wh.duckdb")
        # a link target that is a byte-for-byte copy of a sample file cannot be told apart by its hash: left out
        outside = outside_hashes(root / "outside") - outside_hashes(samples)
        inbox = root / "inbox"
        nights, broken, files = 0, 0, 0
        for first in range(0, len(cases), args.batch):
            batch = cases[first : first + args.batch]
            night = root / f"night{nights:03d}"
            shutil.copytree(samples, night / "inbox")
            for case in batch:  # moved, not copied: links keep their targets, bombs stay sparse
                src = Path(case.path)
                dest = night / "inbox" / src.relative_to(inbox)
                dest.parent.mkdir(parents=True, exist_ok=True)
                if os.path.lexists(src):
                    os.rename(src, dest)
            t0 = time.perf_counter()
            result = dcf_run(night / "inbox", night / "wh.duckdb")
            problems = judge_night(night / "wh.duckdb", baseline, result, outside)
            nights, files = nights + 1, files + len(batch)
            broken += bool(problems)
            print(
                f"night {nights}: {len(batch)} hostile + {len(baseline)} sample files, exit {result.returncode}, "
                f"{time.perf_counter() - t0:.0f} s" + ("" if not problems else " PROBLEMS: " + "; ".join(problems[:5])),
                flush=True,
            )
            shutil.rmtree(night, ignore_errors=True)
        print(
            f"{nights} night(s), {files} hostile files with the {len(baseline)} sample files each: "
            f"{broken} night(s) broke a promise, in {time.perf_counter() - started:.0f} s"
        )
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())

"""DuckDB's close race (docs/adr/0015), as a stress run: reader processes open a warehouse file read-only, run two
queries (one with a hash join), close, and again, for a while; the run counts sessions and readers that died of a
signal. A diagnostic, not a target and not a test: the race is rare (between 1 in 2,000 and 1 in 24,000 closes in
the runs of 2026-12-03 on a busy 2-core machine), so a run of minutes shows a crash only now and then.

Usage: ``python -m benchmarks.close_race WAREHOUSE [--readers 4] [--seconds 600] [--round 40] [--plain]
[--import-flow]``. ``--plain`` closes as DuckDB's own examples do, without stopping the workers first (the crash
needs it); without it each close goes through ``warehouse.connect.close``. ``--import-flow`` makes each reader import
the flow's modules first, as the four-readers test's readers do (the crash showed far more often so). Keep the cores
busy beside it (two ``while :; do :; done`` loops) to see it at all. Exit code 1 when a reader died.

Measured 2026-12-03 (2-core AMD EPYC, DuckDB 1.5.5, two busy loops, the sample warehouse): ``--plain
--import-flow``, no load: 1 reader died in about 24,000 sessions; with ``warehouse.connect.close``, and nightly
loads publishing beside the readers: none in 39,488.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

QUERIES = (
    "SELECT count(*), sum(amount_usd) FROM funding_lines",
    "SELECT * FROM file_reconciliation WHERE NOT reconciles",
)


def _reader(path: str, stop, out: str, plain: bool, import_flow: bool) -> None:  # stop: an mp.Event
    import faulthandler

    if import_flow:
        import flows.nightly  # noqa: F401 - only its effect on the process matters

    import duckdb

    from warehouse.connect import close

    fault = open(out + ".fault", "w", encoding="utf-8")  # noqa: SIM115 - open until the process ends
    faulthandler.enable(fault)
    done, errors = 0, []
    while not stop.is_set():
        try:
            con = duckdb.connect(path, read_only=True)
            try:
                for query in QUERIES:
                    con.execute(query).fetchall()
            finally:
                con.close() if plain else close(con)
            done += 1
        except duckdb.Error as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
    Path(out).write_text(json.dumps([done, len(errors), errors[:3]]), encoding="utf-8")


def run(warehouse: Path, readers: int, seconds: float, round_s: float, plain: bool, import_flow: bool) -> dict:
    """Rounds of ``readers`` processes, ``round_s`` seconds each, until ``seconds`` have passed."""
    ctx = mp.get_context("spawn")
    sessions = died = errors = rounds = 0
    where: list[str] = []
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="close-race-") as tmp:
        while time.monotonic() - t0 < seconds:
            rounds += 1
            stop = ctx.Event()
            outs = [str(Path(tmp) / f"r{rounds}-{i}") for i in range(readers)]
            procs = [ctx.Process(target=_reader, args=(str(warehouse), stop, o, plain, import_flow)) for o in outs]
            for p in procs:
                p.start()
            time.sleep(min(round_s, max(0.5, seconds - (time.monotonic() - t0))))
            stop.set()
            for p in procs:
                p.join(300)
            for p, o in zip(procs, outs, strict=True):
                if p.exitcode != 0:
                    died += 1
                    fault = Path(o + ".fault")
                    where.append(fault.read_text(encoding="utf-8")[:600] if fault.exists() else f"exit {p.exitcode}")
                elif Path(o).exists():
                    done, errs, _ = json.loads(Path(o).read_text(encoding="utf-8"))
                    sessions += done
                    errors += errs
            print(f"round {rounds}: {sessions} sessions, {died} reader(s) died, {errors} error(s)", flush=True)
    return {"rounds": rounds, "sessions": sessions, "died": died, "errors": errors, "where": where}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.close_race",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: python -m benchmarks.close_race data/warehouse.duckdb --plain --import-flow --seconds 3600",
    )
    parser.add_argument("warehouse", type=Path, help="a warehouse file (e.g. data/warehouse.duckdb after make demo)")
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--round", dest="round_s", type=float, default=40, help="seconds per round of readers")
    parser.add_argument("--plain", action="store_true", help="close without stopping DuckDB's workers first")
    parser.add_argument("--import-flow", action="store_true", help="readers import the flow's modules first")
    args = parser.parse_args(argv)
    if not args.warehouse.is_file():
        print(f"error: no warehouse file at {args.warehouse}", file=sys.stderr)
        return 2
    found = run(args.warehouse, args.readers, args.seconds, args.round_s, args.plain, args.import_flow)
    print(json.dumps({k: v for k, v in found.items() if k != "where"}))
    for text in found["where"]:
        print(text, file=sys.stderr)
    return 1 if found["died"] else 0


if __name__ == "__main__":
    sys.exit(main())

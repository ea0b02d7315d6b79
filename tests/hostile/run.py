"""Run a hostile corpus through discovery and ``process_file`` as the nightly flow would, and judge every outcome.

    python -m tests.hostile.run --count 2000            # build a corpus in a temporary folder, run it, print a summary
    python -m tests.hostile.run --root DIR --reuse --json --memory-gib 1   # run a corpus already built (tests use this)

Exit status 1 when anything escaped (a crash) or an outcome broke a promise (see :func:`judge`).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "tests" / "fixtures" / "reference"  # the tests' frozen copy, never the live steward tables
MAX_MESSAGE = 500


@dataclass
class Outcome:
    path: str
    kind: str
    category: str
    status: str  # loaded | failed | refused | crashed
    rule: str | None = None
    message: str | None = None
    seconds: float = 0.0  # wall clock
    cpu_seconds: float = 0.0  # this process's CPU time: what the file cost, whatever else the machine is doing
    counts: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _task(path: Path, inbox: Path, src):
    """The task the nightly discovery makes (flows/nightly.py): hashed, or marked unreadable."""
    from flows.process import FileTask, describe_seen
    from flows.retry import RetryPolicy, unreadable_message

    rel = path.relative_to(inbox / src.inbox_dir).as_posix()
    key = f"{src.agency}/{rel}"
    try:
        digest, size, mtime, seen = describe_seen(path)
    except OSError as exc:
        return FileTask(
            path,
            key,
            "unreadable",
            "hostile",
            0,
            None,
            src,
            src.spec_for(rel),
            read_error=unreadable_message(path, exc, RetryPolicy()),
        )
    return FileTask(path, key, digest, "hostile", size, mtime, src, src.spec_for(rel), seen=seen)


def run_corpus(root: Path) -> list[Outcome]:
    """Discover ``root/inbox`` and process every file found, as the nightly flow does; judge each outcome against
    its case (tests/hostile/corpus.py) when it has one."""
    from flows.discover import scan_inbox
    from flows.process import process_file
    from flows.reference import read_reference
    from schemas.sources import load_sources
    from tests.hostile.corpus import load_cases

    sources, reference = load_sources(ROOT / "sources"), read_reference(REFERENCE)
    cases = {c.path: c for c in load_cases(root)}
    inbox = root / "inbox"
    found, refused = scan_inbox(inbox, sources)
    outcomes = [Outcome(str(p), "", "", "refused", message=reason) for p, _, reason in refused]
    for path, src in found:
        out = Outcome(str(path), "", "", "crashed")
        started, cpu_started = time.perf_counter(), time.process_time()
        try:
            batch = process_file(_task(path, inbox, src), reference)
            out.status, out.message, out.counts = batch.status, batch.message, batch.counts
            failures = batch.failures if batch.failures is not None else None
            out.rule = (
                str(failures["rule"].iloc[0])
                if batch.status == "failed" and failures is not None and len(failures)
                else None
            )
            out.problems += _batch_problems(batch)
            if batch.status == "loaded" and failures is not None and len(failures):
                out.counts = {**out.counts, "rules": sorted(set(failures["rule"].astype(str)))}
        except Exception as exc:  # noqa: BLE001 - this is what the corpus hunts for
            out.message = f"{type(exc).__name__}: {str(exc)[:300]}"
            out.problems.append("an exception escaped process_file")
        out.seconds = time.perf_counter() - started
        out.cpu_seconds = time.process_time() - cpu_started
        outcomes.append(out)
    seen = {o.path for o in outcomes}
    for path, case in cases.items():
        if path not in seen:
            outcomes.append(Outcome(path, case.kind, case.category, "missing", problems=["neither read nor refused"]))
    for o in outcomes:
        case = cases.get(o.path)
        if case is not None:
            o.kind, o.category = case.kind, case.category
            o.problems += judge(o, case)
    return outcomes


def _batch_problems(batch) -> list[str]:
    from schemas.batch import FileBatch
    from schemas.rules import RULES

    if not isinstance(batch, FileBatch):
        return [f"process_file returned {type(batch).__name__}, not a FileBatch"]
    problems = []
    for text in (batch.file_key, batch.path, batch.message or ""):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            problems.append("text that cannot be stored (surrogates)")
    if batch.status == "failed":
        m = batch.message or ""
        if not m or "\n" in m or len(m) > MAX_MESSAGE or "Traceback" in m:
            problems.append(f"failed without a one-line message of at most {MAX_MESSAGE} characters ({len(m)})")
        rules = set(batch.failures["rule"].astype(str)) if batch.failures is not None else set()
        if not rules or not rules <= set(RULES):
            problems.append(f"failure rules {sorted(rules)} not in the catalogue")
    else:
        c = batch.counts
        if c["rows_read"] != c["rows_loaded"] + c["rows_quarantined"] + c["rows_skipped"]:
            problems.append(f"counts do not reconcile: {c}")
    return problems


def judge(o: Outcome, case) -> list[str]:
    """What the case promised: loaded / failed (with its rule) / refused by discovery / accepted (read at all)."""
    if o.status in ("crashed", "missing"):
        return []
    if case.expect == "accepted":
        return [] if o.status in ("loaded", "failed") else [f"expected to be read, was {o.status}"]
    if case.expect != "any" and o.status != case.expect:
        return [f"expected {case.expect}, was {o.status} ({(o.message or '')[:160]})"]
    if case.rule and o.status == "failed" and o.rule != case.rule:
        return [f"expected rule {case.rule}, got {o.rule} ({(o.message or '')[:160]})"]
    if case.rule and o.status == "loaded" and case.rule not in o.counts.get("rules", []):
        return [f"expected a quarantined row with rule {case.rule}, got {o.counts.get('rules')}"]
    return []


def summary(outcomes: list[Outcome]) -> str:
    status = Counter(o.status for o in outcomes)
    crashes = sum(o.status == "crashed" for o in outcomes)
    with_message = sum(o.status == "failed" and bool(o.message) for o in outcomes)
    problems = [o for o in outcomes if o.problems]
    slowest = max(outcomes, key=lambda o: o.seconds, default=None)
    lines = [
        f"files: {len(outcomes)}  crashes: {crashes}  refused: {status['refused']}  "
        f"failed with message: {with_message}/{status['failed']}  loaded: {status['loaded']}  "
        f"broken promises: {len(problems)}",
        "by category: "
        + ", ".join(f"{k or 'other'} {v}" for k, v in sorted(Counter(o.category for o in outcomes).items())),
    ]
    if slowest is not None:
        lines.append(f"slowest: {slowest.seconds:.2f} s ({slowest.kind or 'other'}: {Path(slowest.path).name[:60]!r})")
    lines += [f"  PROBLEM {o.kind} {Path(o.path).name[:60]!r}: {'; '.join(o.problems)}" for o in problems[:30]]
    return "\n".join(lines)


def _cap_memory(extra_gib: float) -> None:
    """Limit the address space to what the process uses now plus ``extra_gib``: a file that is expanded anyway
    (a bomb that got past the checks) makes this process fail instead of the machine swap."""
    with open("/proc/self/status") as fh:
        vm = next(int(line.split()[1]) for line in fh if line.startswith("VmSize:")) * 1024
    limit = vm + int(extra_gib * (1 << 30))
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=None, help="about this many files (default: one per kind)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--root", type=Path, default=None, help="corpus folder (default: a temporary one)")
    parser.add_argument("--reuse", action="store_true", help="run the corpus already built under --root")
    parser.add_argument("--kinds", nargs="*", default=None)
    parser.add_argument("--memory-gib", type=float, default=None, help="cap the address space at current + this")
    parser.add_argument("--json", action="store_true", help="one JSON outcome per line instead of a summary")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory(prefix="dcf-hostile-") as tmp:
        root = args.root or Path(tmp)
        if not args.reuse:
            from samples import generate_inbox
            from tests.hostile.corpus import build

            generate_inbox(root / "samples", seed=42)
            started = time.perf_counter()
            cases = build(root / "samples", root, seed=args.seed, count=args.count, kinds=args.kinds)
            print(
                f"built {len(cases)} hostile files in {time.perf_counter() - started:.1f} s under {root}",
                file=sys.stderr,
            )
        import flows.process  # noqa: F401 - import everything before the memory cap

        if args.memory_gib:
            _cap_memory(args.memory_gib)
        started = time.perf_counter()
        outcomes = run_corpus(root)
        if args.json:
            for o in outcomes:
                print(json.dumps(asdict(o), ensure_ascii=True))
        else:
            print(summary(outcomes))
            print(f"ran in {time.perf_counter() - started:.1f} s")
    return 1 if any(o.problems for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())

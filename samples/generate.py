"""The two entry points, :func:`generate_inbox` (the demo inbox) and :func:`generate_corpus` (a benchmark corpus),
and the command line ``python -m samples`` (:func:`main`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from samples.agencies import Reference, load_agencies
from samples.budget import LineMaker, plan_defects, write_budget
from samples.common import BAD_RATE, NOTICE, SOURCES_DIR, seeded_rng
from samples.files import write_manifest
from samples.milex import write_milex_editions
from samples.programs import make_programs, write_programs
from samples.register import write_register
from samples.tracker import write_tracker

DESCRIPTION = "SYNTHETIC sample inbox generator - every file it writes is made-up data, not real budgets."


def generate_inbox(inbox: Path, seed: int = 42) -> dict:
    """Write the demo inbox: inbox/<inbox_dir>/<files> for every agency in ``sources/``.

    Returns the manifest dict and also writes it as inbox/MANIFEST.json.
    """
    inbox = Path(inbox)
    ref = Reference.load()
    agencies = load_agencies(ref)
    programs = {c: make_programs(a, seeded_rng(seed, c, "programs")) for c, a in agencies.items()}
    budgets = [
        (a, y, seeded_rng(seed, c, y, "size").randint(*a.layout.lines))
        for c, a in agencies.items()
        for y in a.layout.years
    ]
    slots = [(max(1, round(n * BAD_RATE)), a.defect_kinds(), a.required_defects()) for a, _, n in budgets]
    plan = plan_defects(slots, seeded_rng(seed, "defects"))
    entries = []
    for (agency, year, n_lines), kinds in zip(budgets, plan):
        rng = seeded_rng(seed, agency.code, year, "lines")
        defects = dict(zip(rng.sample(range(n_lines), len(kinds)), kinds))
        maker = LineMaker(agency, programs[agency.code], year, ref, rng)
        entries.append(write_budget(inbox, agency, maker, n_lines, defects))
    for code, agency in agencies.items():
        if agency.programs_cfg:
            entries.append(write_programs(inbox, agency, programs[code], seeded_rng(seed, code, "programs-file")))
    if (SOURCES_DIR / "sipri.yaml").exists():
        entries.extend(write_milex_editions(inbox, seed))
    entries.extend(write_records_samples(inbox, seed, SOURCES_DIR))
    return write_manifest(seed, entries, inbox)


def generate_corpus(inbox: Path, total_lines: int = 100_000, n_files: int = 10, seed: int = 7) -> dict:
    """Benchmark corpus: budget workbooks only, total_lines spread evenly over n_files.

    Files go round-robin over the agencies with workbook budgets (each in its own layout; GAMI's
    CSV exports are left out, the benchmark baselines read workbooks); no planted defects.
    Returns a manifest of the same shape as generate_inbox and writes inbox/MANIFEST.json.
    """
    inbox = Path(inbox)
    ref = Reference.load()
    agencies = [a for a in load_agencies(ref).values() if not a.is_csv]
    programs = {a.code: make_programs(a, seeded_rng(seed, a.code, "programs")) for a in agencies}
    entries = []
    for i in range(n_files):
        agency = agencies[i % len(agencies)]
        years = agency.layout.years
        year = years[(i // len(agencies)) % len(years)]
        n_lines = total_lines // n_files + (i < total_lines % n_files)
        stem, dot, ext = agency.budget_name(year).rpartition(".")
        name = f"{stem}_c{i:03d}{dot}{ext}"
        maker = LineMaker(agency, programs[agency.code], year, ref, seeded_rng(seed, "corpus", i))
        entries.append(write_budget(inbox, agency, maker, n_lines, {}, name=name))
    return write_manifest(seed, entries, inbox)


def write_records_samples(inbox: Path, seed: int, sources_dir: Path) -> list[dict]:
    """The register and the tracker, each only when its source YAML is in ``sources_dir`` (as SIPRI's)."""
    entries: list[dict] = []
    if (sources_dir / "armsreg.yaml").exists():
        entries += write_register(inbox, seed)
    if (sources_dir / "pledges.yaml").exists():
        entries += write_tracker(inbox, seed)
    return entries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m samples", description=DESCRIPTION)
    parser.add_argument("--inbox", type=Path, required=True, help="output directory")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--corpus-lines", type=int, default=None, help="write a benchmark corpus of N lines instead of the demo inbox"
    )
    parser.add_argument("--corpus-files", type=int, default=10)
    args = parser.parse_args(argv)
    if args.corpus_lines:
        kwargs = {} if args.seed is None else {"seed": args.seed}
        manifest = generate_corpus(args.inbox, args.corpus_lines, args.corpus_files, **kwargs)
    else:
        manifest = generate_inbox(args.inbox, 42 if args.seed is None else args.seed)
    files = manifest["files"]
    lines = sum(f["lines"] for f in files)
    bad = sum(len(f["bad_rows"]) for f in files)
    print(f"{NOTICE}: wrote {len(files)} files, {lines} lines ({bad} bad rows) to {args.inbox}")
    return 0

"""The benchmark's pure parts (benchmarks/): the scaling exponent, the targets' verdicts, the corpus cache key, the
stage breakdown's arithmetic and BENCHMARKS.md's sections. Nothing here is timed."""

from __future__ import annotations

import math

import pytest

from benchmarks.corpus import KEY_RE, cache_key, digest_files, split_lines
from benchmarks.figures import (
    EXPONENT,
    INCREMENTAL_RATIO,
    NAIVE_RATIO,
    NOOP_BEYOND_FLOOR,
    RAW_RATIO,
    RSS_5M,
    files_for,
    fit_exponent,
    fit_slope,
    load_note,
)
from benchmarks.report import section_order, update_markdown
from benchmarks.stages import ROWS, breakdown


def test_exponent_of_a_power_law_is_its_power():
    assert fit_exponent([(1e5, 2.0), (1e6, 20.0), (5e6, 100.0)]) == pytest.approx(1.0, abs=1e-12)
    assert fit_exponent([(10, 100), (100, 10_000), (1000, 1_000_000)]) == pytest.approx(2.0, abs=1e-12)


def test_exponent_is_the_least_squares_slope():
    # log x = 0, 1, 2 and log y = 0, 1, 3: slope ((-1)(-4/3) + 0 + (1)(5/3)) / 2 = 1.5
    points = [(math.exp(0), math.exp(0)), (math.exp(1), math.exp(1)), (math.exp(2), math.exp(3))]
    assert fit_exponent(points) == pytest.approx(1.5, abs=1e-12)


def test_exponent_needs_two_sizes_and_positive_figures():
    assert fit_exponent([(1e5, 3.0)]) is None
    assert fit_exponent([(1e5, 3.0), (1e5, 4.0)]) is None
    assert fit_exponent([(1e5, 3.0), (1e6, 0.0)]) is None
    assert fit_exponent([]) is None


def test_slope_is_the_least_squares_line():
    assert fit_slope([(0.1, 500.0), (1.0, 1200.0), (5.0, 3500.0)]) == pytest.approx(600.9309162175405, abs=1e-9)
    assert fit_slope([(1.0, 2.0), (3.0, 6.0)]) == 2.0
    assert fit_slope([(1.0, 2.0)]) is None


def test_verdicts_say_pass_or_by_how_much_a_target_is_missed():
    assert RAW_RATIO.verdict(1.0) == "PASS"
    assert RAW_RATIO.verdict(0.43) == "MISS by 0.57 (2.33x short)"
    assert NAIVE_RATIO.verdict(84.4) == "MISS by 15.60 (1.18x short)"
    assert NOOP_BEYOND_FLOOR.verdict(0.5) == "PASS"
    assert NOOP_BEYOND_FLOOR.verdict(1.2) == "MISS by 0.70 s (2.40x the limit)"
    assert RSS_5M.verdict(2048) == "MISS by 1,024.00 MiB (2.00x the limit)"
    assert INCREMENTAL_RATIO.verdict(1.49) == "PASS"
    assert EXPONENT.verdict(1.2) == "MISS by 0.15 (1.14x the limit)"
    assert RAW_RATIO.verdict(None) == "n/a"
    assert RAW_RATIO.verdict(0.0) == "MISS by 1.00 (no figure above 0)"


def test_targets_say_what_they_want():
    assert [t.wanted for t in (RAW_RATIO, NAIVE_RATIO, RSS_5M, INCREMENTAL_RATIO, NOOP_BEYOND_FLOOR, EXPONENT)] == [
        ">= 1",
        ">= 100",
        "<= 1024 MiB",
        "<= 1.5",
        "<= 0.5 s",
        "<= 1.05",
    ]


def test_load_note_says_when_the_machine_was_shared():
    assert load_note(0.4, 0.9, 2) == "load average (1 min) 0.40 at the start, 0.90 at the end, on 2 cores (quiet)"
    # the benchmark's own two busy cores are in the end's load: a quiet run still ends near 2
    assert load_note(0.21, 1.37, 2).endswith("on 2 cores (quiet)")
    assert load_note(0.2, 3.0, 2).endswith("(quiet)")
    busy = load_note(3.0, 0.2, 2)
    assert busy.startswith(
        "load average (1 min) 3.00 at the start, 0.20 at the end, on 2 cores: the machine was SHARED"
    )
    assert "SHARED" in load_note(0.4, 3.1, 2)  # more than its own two cores' worth at the end


def test_cache_key_names_lines_files_seed_and_generator():
    key = cache_key(5_000_000, 50, 7, "3b983a44cf02")
    assert key == "lines-5000000-files-50-seed-7-gen-3b983a44cf02"
    m = KEY_RE.match(key)
    assert m is not None and m.groups() == ("5000000", "50", "7", "3b983a44cf02")


def test_generator_digest_covers_names_and_bytes(tmp_path):
    (tmp_path / "a.py").write_bytes(b"x = 1\n")
    (tmp_path / "b.csv").write_bytes(b"")
    first = digest_files([tmp_path / "b.csv", tmp_path / "a.py"], tmp_path)
    assert first == digest_files([tmp_path / "a.py", tmp_path / "b.csv"], tmp_path)  # order of listing: no matter
    assert len(first) == 12 and int(first, 16) >= 0
    (tmp_path / "a.py").write_bytes(b"x = 2\n")
    assert digest_files([tmp_path / "a.py", tmp_path / "b.csv"], tmp_path) != first


def test_corpus_sizes_spread_lines_over_workbooks():
    assert split_lines(10, 3) == [4, 3, 3]
    assert split_lines(5_000_000, 50) == [100_000] * 50
    assert files_for(100_000, 100_000, 10) == 10
    assert files_for(1_000_000, 100_000, 10) == 10
    assert files_for(2_050_000, 100_000, 10) == 21
    assert files_for(5_000_000, 100_000, 10) == 50


def test_stage_breakdown_adds_up_to_the_flow_time():
    a, b = 1, 2  # two worker threads
    calls = [
        ("flow_body", 0.0, 10.0, 0),
        ("reference", 0.0, 1.0, 0),
        ("discover", 1.0, 2.0, 0),
        ("file_task", 2.0, 5.0, a),
        ("read", 2.0, 3.0, a),
        ("standardise", 3.0, 4.5, a),
        ("raw_contract", 3.0, 3.25, a),
        ("canonical_contract", 4.0, 4.25, a),
        ("archive", 4.5, 4.75, a),
        ("file_task", 2.5, 6.0, b),
        ("read", 2.5, 4.0, b),
        ("standardise", 4.0, 5.5, b),
        ("process_file", 2.0, 4.5, a),
        ("process_file", 2.5, 5.5, b),
        ("quiet_check", 6.0, 6.25, 0),
        ("load_publish", 6.5, 9.5, 0),
        ("staging_copy", 6.5, 7.5, 0),
        ("staging_ddl", 7.0, 7.5, 0),
        ("staging_ddl", 9.75, 10.0, 0),  # outside Staging.__init__: not the staging's DDL
        ("load", 7.5, 8.0, 0),
        ("publish", 8.5, 9.5, 0),
        ("publish_file", 9.0, 9.5, 0),
    ]
    fig = breakdown(calls, 10.5, [])
    assert fig["prefect_outside"] == 0.5
    assert fig["per_file_wall"] == 4.0
    assert (fig["read"], fig["contracts"], fig["normalise"], fig["archive"]) == (2.5, 0.5, 2.5, 0.25)
    assert fig["per_file_other"] == 6.5 - 2.5 - 3.0 - 0.25
    assert (fig["staging"], fig["staging_copy"], fig["staging_ddl"]) == (1.0, 0.5, 0.5)
    assert (fig["load"], fig["checks"], fig["publish"]) == (0.5, 0.5, 1.0)
    assert (fig["publish_checkpoint"], fig["publish_file"]) == (0.5, 0.5)
    assert fig["prefect_rest"] == 10.0 - (1.0 + 1.0 + 0.25 + 3.0) - 4.0
    assert (fig["files"], fig["threads"], fig["problems"]) == (2, 2, [])
    assert sum(fig[key] for key, _, kind in ROWS if kind == "wall") == 10.5


def test_stage_breakdown_counts_what_is_stored_while_files_are_processed_inside_their_wall_time():
    """Streaming (flows/nightly_load.py): the staging copy and the loads that ran on the flow's thread while files
    were processed are part of the per-file wall time; only the last file's load (after the window) is serial."""
    calls = [
        ("flow_body", 0.0, 10.0, 0),
        ("reference", 0.0, 1.0, 0),
        ("discover", 1.0, 2.0, 0),
        ("file_task", 2.0, 4.0, 1),
        ("file_task", 2.0, 6.0, 2),
        ("file_task", 4.0, 6.5, 1),
        ("staging_copy", 4.0, 5.0, 0),  # opened when the first file came back
        ("staging_ddl", 4.5, 5.0, 0),
        ("load", 5.0, 5.5, 0),
        ("load", 6.0, 6.25, 0),
        ("load", 6.5, 7.0, 0),  # the last file, after the window
        ("load_publish", 7.0, 9.0, 0),
        ("load", 7.0, 7.25, 0),  # held editions, inside load-and-publish
        ("publish", 8.0, 9.0, 0),
    ]
    fig = breakdown(calls, 10.0, [])
    assert fig["per_file_wall"] == 4.5
    assert fig["writer"] == 1.0 + 0.5 + 0.25
    assert (fig["staging"], fig["staging_ddl"], fig["load"]) == (0.0, 0.0, 0.5 + 0.25)
    assert fig["checks"] == 2.0 - 0.25 - 1.0
    assert (fig["staging_all"], fig["staging_ddl_all"], fig["load_all"]) == (1.0, 0.5, 1.5)
    assert fig["prefect_rest"] == 10.0 - (1.0 + 1.0 + 2.0 + 0.5) - 4.5
    assert sum(fig[key] for key, _, kind in ROWS if kind == "wall") == 10.0


def test_stage_breakdown_reports_hooks_it_lost():
    fig = breakdown([("flow_body", 0.0, 1.0, 0), ("file_task", 0.0, 0.5, 1)], 1.0, ["flows.kinds.table.read_x"])
    assert fig["problems"][0] == "stage probe: flows.kinds.table.read_x not found (renamed or moved?)"
    assert "stage probe: 'discover' was never called" in fig["problems"]
    assert "stage probe: 'read' was never called" in fig["problems"]


def test_a_run_replaces_only_its_own_section(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    keep = "<!-- bench:begin lines=1000000 files=10 -->\nold 1M\n<!-- bench:end -->\n"
    mine = "<!-- bench:begin lines=100000 files=10 -->\nold 100k\n<!-- bench:end -->\n"
    out.write_text("# old intro\n\n" + keep + "\n" + mine, encoding="utf-8")
    update_markdown(out, "scale", "<!-- bench:begin scale -->\nSCALE-SECTION\n<!-- bench:end -->\n")
    new = "<!-- bench:begin lines=100000 files=10 -->\nnew 100k\n<!-- bench:end -->\n"
    update_markdown(out, "lines=100000 files=10", new)
    text = out.read_text(encoding="utf-8")
    assert "old intro" not in text and "old 100k" not in text
    assert text.index("new 100k") < text.index("old 1M") < text.index("SCALE-SECTION")
    assert sorted(["scale", "lines=1000000 files=10", "lines=100000 files=10"], key=section_order) == [
        "lines=100000 files=10",
        "lines=1000000 files=10",
        "scale",
    ]

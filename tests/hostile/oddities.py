"""Hostile contents and names: Excel oddities (extreme dates, blank cells, NUL, formulas without values, error
cells, a hidden first sheet), CSV oddities, file-name tricks, links and special files."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

import openpyxl

from tests.hostile.cases import GAMI, Case, Ctx, case, data_rows, edit_sheets, pick_xlsx


# --------------------------------------------------------------------------------------------------- Excel oddities
def extreme_dates(ctx: Ctx) -> Case:
    """Dates pandas cannot hold in nanoseconds: Excel serials (150000 is 2310-09-07; 2958465 is 9999-12-31) and
    text (year 0001, 2300)."""
    src = ctx.base("gip", "GIP_programs.xlsx")
    wb = openpyxl.load_workbook(src)
    ws = wb.active
    for _ in range(ctx.rng.randrange(1, 4)):
        cell = ws.cell(row=ctx.rng.randrange(3, ws.max_row + 1), column=ctx.rng.choice([5, 6]))
        cell.value = ctx.rng.choice(
            [150000, 2958465, 140000, "0001-01-02", "2300-01-01"]
        )  # all after 2262 or before 1677
        cell.number_format = "yyyy-mm-dd"
    out = ctx.dest("gip", "GIP_programs.xlsx", "_dates")
    wb.save(out)
    return case(ctx, "excel", "extreme_dates", out, "GIP", "loaded", "date_out_of_range")


def blank_stage(ctx: Ctx) -> Case:
    src = ctx.base("mof", "MOF_budget_FY2024.xlsx")
    wb = openpyxl.load_workbook(src)
    ws = wb["Lines"]
    for _ in range(ctx.rng.randrange(1, 5)):
        ws.cell(row=ctx.rng.randrange(4, ws.max_row), column=5).value = ctx.rng.choice([None, " ", "\t"])
    out = ctx.dest("mof", "MOF_budget_FY2024.xlsx", "_blank_stage")
    wb.save(out)
    return case(ctx, "excel", "blank_stage", out, "MOF", "loaded", "required_missing")


def nul_cells(ctx: Ctx) -> Case:
    """Every data cell's text made of, or ending in, NUL characters (Excel's _x0000_ escape)."""
    d, agency, name = ctx.rng.choice(
        [("mof", "MOF", "MOF_budget_FY2024.xlsx"), ("mod", "MOD", "MOD_budget_FY2024.xlsx")]
    )
    whole = ctx.rng.random() < 0.5
    text = (lambda m: b"<t>_x0000_</t>") if whole else (lambda m: m.group(0)[:-4] + b"_x0000_</t>")
    out = ctx.dest(d, name, "_nul")
    edit_sheets(ctx.base(d, name), out, lambda xml: data_rows(xml, 6, lambda row: re.sub(rb"<t>[^<]*</t>", text, row)))
    return case(ctx, "excel", "nul_cells", out, agency, "loaded")


def formulas_without_values(ctx: Ctx) -> Case:
    d, agency, name = pick_xlsx(ctx)
    out = ctx.dest(d, name, "_formulas")
    formula = ctx.rng.choice([b"SUM(A1:A3)", b"1/0", b"NOW()", b"VLOOKUP(A1,Z:Z,2,FALSE)"])
    edit_sheets(
        ctx.base(d, name),
        out,
        lambda xml: data_rows(
            xml,
            6,
            lambda row: re.sub(
                rb'<c r="([A-Z]+\d+)"([^>]*?)(?: t="n")?><v>[^<]*</v></c>',
                lambda m: b'<c r="' + m.group(1) + b'"><f>' + formula + b"</f></c>",
                row,
            ),
        ),
    )
    return case(ctx, "excel", "formulas_without_values", out, agency, "any")


def error_cells(ctx: Ctx) -> Case:
    d, agency, name = pick_xlsx(ctx)
    out = ctx.dest(d, name, "_errors")
    rng = ctx.rng

    def spoil(row: bytes) -> bytes:
        return re.sub(
            rb'<c r="([A-Z]+\d+)"[^>]*?(?:/>|>.*?</c>)',
            lambda m: (
                (
                    b'<c r="'
                    + m.group(1)
                    + b'" t="e"><v>'
                    + rng.choice([b"#DIV/0!", b"#SPILL!", b"#CALC!", b"#N/A", b"#REF!", b"#VALUE!"])
                    + b"</v></c>"
                )
                if rng.random() < 0.2
                else m.group(0)
            ),
            row,
            flags=re.S,
        )

    edit_sheets(ctx.base(d, name), out, lambda xml: data_rows(xml, 4, spoil))
    return case(ctx, "excel", "error_cells", out, agency, "any")


def hidden_first_sheet(ctx: Ctx) -> Case:
    d, agency, name = ctx.rng.choice(
        [("gip", "GIP", "GIP_budget_2023-24.xlsx"), ("mod", "MOD", "MOD_budget_FY2024.xlsx")]
    )
    wb = openpyxl.load_workbook(ctx.base(d, name))
    hidden = wb.create_sheet("Hidden", 0)
    hidden.sheet_state = "hidden"
    hidden["A1"] = "internal"
    out = ctx.dest(d, name, "_hidden")
    wb.save(out)
    return case(ctx, "excel", "hidden_first_sheet", out, agency, "any")


# ----------------------------------------------------------------------------------------------------- CSV oddities
def _gami_lines(ctx: Ctx) -> list[bytes]:
    return ctx.base(*GAMI[::2]).read_bytes().split(b"\n")


def _write_lines(ctx: Ctx, tag: str, lines: list[bytes]) -> Path:
    out = ctx.dest(GAMI[0], GAMI[2], tag)
    out.write_bytes(b"\n".join(lines))
    return out


def nul_before_newline(ctx: Ctx) -> Case:
    """The trial's silent loss: one NUL before the first line end made pyarrow drop a record."""
    lines = _gami_lines(ctx)
    lines[0] = lines[0] + b"\0"
    return case(
        ctx, "csv", "nul_before_newline", _write_lines(ctx, "_nul_header", lines), "GAMI", "failed", "file_unreadable"
    )


def nul_in_cells(ctx: Ctx) -> Case:
    lines = _gami_lines(ctx)
    body = [
        b";".join(c + b"\0" if ctx.rng.random() < 0.5 else c for c in line.split(b";")) if line else line
        for line in lines[1:]
    ]
    return case(ctx, "csv", "nul_in_cells", _write_lines(ctx, "_nul_cells", [lines[0], *body]), "GAMI", "any")


def huge_header_field(ctx: Ctx) -> Case:
    lines = _gami_lines(ctx)
    lines[0] = lines[0] + b";" + b"H" * ctx.rng.randrange(131_073, 400_000)
    return case(
        ctx, "csv", "huge_header_field", _write_lines(ctx, "_huge_header", lines), "GAMI", "failed", "file_too_large"
    )


def huge_cell(ctx: Ctx) -> Case:
    lines = _gami_lines(ctx)
    i = ctx.rng.randrange(1, len(lines) - 2)
    cells = lines[i].split(b";")
    cells[1] = b"N" * ctx.rng.randrange(40_000, 2_000_000)  # the project name column
    lines[i] = b";".join(cells)
    return case(ctx, "csv", "huge_cell", _write_lines(ctx, "_huge_cell", lines), "GAMI", "failed", "file_too_large")


def unbalanced_quote(ctx: Ctx) -> Case:
    lines = _gami_lines(ctx)
    i = ctx.rng.randrange(1, len(lines) - 2)
    lines[i] = b'"' + lines[i]
    return case(ctx, "csv", "unbalanced_quote", _write_lines(ctx, "_quote", lines), "GAMI", "any")


def stray_cr(ctx: Ctx) -> Case:
    lines = _gami_lines(ctx)
    i = ctx.rng.randrange(1, len(lines) - 2)
    pos = ctx.rng.randrange(0, len(lines[i]))
    lines[i] = lines[i][:pos] + b"\r" + lines[i][pos:]
    return case(ctx, "csv", "stray_cr", _write_lines(ctx, "_cr", lines), "GAMI", "any")


def wrong_encoding(ctx: Ctx) -> Case:
    text = (
        ctx.base(*GAMI[::2])
        .read_text(encoding="utf-8")
        .replace("Turkey", "Türkiye")
        .replace("Saudi Arabia", "Saudi Arabia ä")
    )
    encoding = ctx.rng.choice(["latin-1", "cp1252", "utf-16"])
    out = ctx.dest(GAMI[0], GAMI[2], f"_{encoding}")
    out.write_bytes(text.encode(encoding))
    return case(ctx, "csv", "wrong_encoding", out, "GAMI", "failed")


def utf7ish(ctx: Ctx) -> Case:
    lines = _gami_lines(ctx)
    lines = [line.replace(b"Italy", b"+AEkAdABhAGwAeQ-") for line in lines]
    return case(ctx, "csv", "utf7ish", _write_lines(ctx, "_utf7", lines), "GAMI", "loaded")


def quoted_newlines(ctx: Ctx) -> Case:
    """A legitimate oddity: line breaks inside quoted program names. Every record must load or be quarantined."""
    text = ctx.base("mod", "MOD_programs.csv").read_text(encoding="utf-8-sig").split("\n")
    out_lines = [text[0]]
    for line in text[1:]:
        cells = line.split(",")
        if len(cells) > 2 and ctx.rng.random() < 0.3:
            cells[1] = f'"{cells[1]}\nline two"'
        out_lines.append(",".join(cells))
    out = ctx.dest("mod", "MOD_programs.csv", "_newlines")
    out.write_bytes(("\n".join(out_lines)).encode("utf-8-sig"))
    return case(ctx, "csv", "quoted_newlines", out, "MOD", "loaded")


# ------------------------------------------------------------------------------------------------------ file names
def _named(ctx: Ctx, d: str, agency: str, base: str, name: bytes, kind: str) -> Case:
    folder = ctx.inbox / d
    folder.mkdir(parents=True, exist_ok=True)
    path = Path(os.fsdecode(os.path.join(os.fsencode(folder), name)))
    path.write_bytes(ctx.base(d, base).read_bytes())
    return case(ctx, "name", kind, path, agency, "loaded")


def non_utf8_name(ctx: Ctx) -> Case:
    d, agency, base = ctx.rng.choice([GAMI, ("mod", "MOD", "MOD_budget_FY2024.xlsx")])
    ext = base.rsplit(".", 1)[1].encode()
    prefix = base.split("_")[0].encode() + b"_budget_"
    return _named(
        ctx,
        d,
        agency,
        base,
        prefix + b"h%04d_\xff\xfe%c." % (ctx.n, ctx.rng.randrange(0x80, 0xFF)) + ext,
        "non_utf8_name",
    )


def long_name(ctx: Ctx) -> Case:
    d, agency, base = GAMI
    stem = b"GAMI_budget_h%04d_" % ctx.n
    return _named(ctx, d, agency, base, stem + b"x" * (255 - len(stem) - 4) + b".csv", "long_name")


def markup_name(ctx: Ctx) -> Case:
    d, agency, base = GAMI
    return _named(ctx, d, agency, base, b"GAMI_budget_h%04d_[bold red]x[blink]$(id)`id`.csv" % ctx.n, "markup_name")


# ------------------------------------------------------------------------------------------ links and special files
def _link(ctx: Ctx, kind: str, target: str | Path, expect: str = "refused") -> Case:
    folder = ctx.inbox / "gami"
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / f"GAMI_budget_h{ctx.n:04d}_{kind}.csv"
    os.symlink(target, link)
    return case(ctx, "link", kind, link, "GAMI", expect)


def link_outside(ctx: Ctx) -> Case:
    ctx.outside.mkdir(parents=True, exist_ok=True)
    target = ctx.outside / f"elsewhere_{ctx.n}.csv"
    target.write_bytes(ctx.base(*GAMI[::2]).read_bytes())
    return _link(ctx, "link_outside", target)


def link_passwd(ctx: Ctx) -> Case:
    return _link(ctx, "link_passwd", "/etc/passwd")


def link_dangling(ctx: Ctx) -> Case:
    return _link(ctx, "link_dangling", ctx.inbox / "gami" / f"missing_{ctx.n}.csv")


def link_loop(ctx: Ctx) -> Case:
    folder = ctx.inbox / "gami"
    folder.mkdir(parents=True, exist_ok=True)
    a = folder / f"GAMI_budget_h{ctx.n:04d}_loop_b.csv"
    made = _link(ctx, "link_loop", a)
    os.symlink(made.path, a)
    return made


def link_dir_outside(ctx: Ctx) -> Case:
    ctx.outside.mkdir(parents=True, exist_ok=True)
    folder = ctx.inbox / "gami"
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / f"h{ctx.n:04d}_dir_link"
    os.symlink(ctx.outside, link)
    return case(ctx, "link", "link_dir_outside", link, "GAMI", "refused")


def link_inside(ctx: Ctx) -> Case:
    """A link to a file inside the same agency folder is read (its real path is in the inbox)."""
    folder = ctx.inbox / "gami"
    folder.mkdir(parents=True, exist_ok=True)
    real = folder / f"real_h{ctx.n:04d}.txt"
    real.write_bytes(ctx.base(*GAMI[::2]).read_bytes())
    return _link(ctx, "link_inside", real.name, expect="accepted")


def fifo(ctx: Ctx) -> Case:
    folder = ctx.inbox / "gami"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"GAMI_budget_h{ctx.n:04d}_fifo.csv"
    os.mkfifo(path)
    return case(ctx, "special", "fifo", path, "GAMI", "refused")


def unix_socket(ctx: Ctx) -> Case | None:
    folder = ctx.inbox / "gami"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"GAMI_budget_h{ctx.n:04d}_sock.csv"
    if len(os.fsencode(path)) > 100:  # AF_UNIX paths are short
        return None
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
    return case(ctx, "special", "socket", path, "GAMI", "refused")

"""SYNTHETIC sample inbox generator - every file it writes is made-up data, not real budgets.

Writes agency budget files (workbooks, and GAMI's semicolon-separated CSV exports) and programme
lists that follow the agency source configs in ``sources/*.yaml`` (file-name patterns, sheet
names, header aliases, header position, totals label, units, default currency, fiscal calendar,
delimiter) and use the labels in ``reference/*.csv`` (category labels, country spellings, stage
labels, currencies).  Header labels are taken from the YAML ``columns:`` aliases so the generator
stays in sync with the configs; only the agency "habits" (title rows, value styles, currency mix,
number and date formats, ...) live in the small ``LAYOUTS`` table (``samples/layouts.py``).

Workbooks carry a SYNTHETIC notice in a title row or on a cover sheet.  A CSV file cannot carry
one without breaking its header on line 1, so the CSV budgets (GAMI) and programme CSVs are
marked SYNTHETIC only by this docstring and by ``MANIFEST.json`` (``"synthetic": true``).

Agency habits worth knowing:

* MOI keeps Hijri (Umm al-Qura) fiscal years: the fiscal-year cell is "١٤٤٥هـ" (Arabic-Indic
  digits), sometimes 1445 or "1445هـ"; its disbursement dates are Hijri "yyyy/mm/dd" text, mostly in
  Arabic-Indic digits, sometimes ASCII, sometimes blank; some amounts are Arabic-Indic text with
  Arabic separators ("١٬٢٣٤٬٥٦٧", "١٬٢٣٤٫٠٠").
* GAMI exports ";"-separated UTF-8 CSV with European number format ("1.234,56", "850,25"), amounts
  in thousands (the unit is in the amount header), ISO booking dates, and some lines in Pakistani
  rupees, a currency no FX provider has a rate for (the ``no_fx_rate`` defect).

Two entry points (``samples/generate.py``):

* :func:`generate_inbox` - the demo inbox: two budget files per agency plus one programmes
  file per agency that has a ``programs`` entry, with about 2 % deliberately bad rows (one defect
  each) recorded in ``MANIFEST.json``; beside them, when their source YAMLs are present, SIPRI's
  two workbooks (reference data), an arms transfer register and a multi-donor pledge tracker
  (``samples/register.py``, ``samples/tracker.py``, each with its planted problems and expected outcome).
* :func:`generate_corpus` - a benchmark corpus of budget workbooks only (no planted defects),
  written with openpyxl ``write_only`` mode; agencies whose budgets are CSV (GAMI) are left out,
  as the benchmark baselines read workbooks.

Modules: ``common`` (constants, seeded random generators), ``layouts`` (the agencies' habits), ``agencies`` (an
agency's YAML, layout and reference labels), ``programs`` (programme lists and files), ``budget`` (budget lines,
planted defects, budget files), ``milex`` (the SIPRI-layout reference workbooks), ``register`` and ``tracker`` (the
two shapes no agency of ours sends), ``files`` (deterministic workbooks, manifest entries, ``MANIFEST.json``),
``generate`` (the entry points and the command line).

Output is deterministic: the same seed gives byte-identical files (fixed document properties and
fixed zip-entry timestamps; only seeded ``random.Random`` instances are used).

CLI: ``python -m samples --inbox DIR [--seed N] [--corpus-lines N --corpus-files K]``
"""

from __future__ import annotations

from samples.common import DEFECT_KINDS, ISO2, NOTICE
from samples.generate import generate_corpus, generate_inbox, main
from samples.layouts import LAYOUTS

__all__ = ["DEFECT_KINDS", "ISO2", "LAYOUTS", "NOTICE", "generate_corpus", "generate_inbox", "main"]

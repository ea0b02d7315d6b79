"""``dcf sample``: write the SYNTHETIC sample inbox (samples/)."""

from __future__ import annotations

from pathlib import Path

import typer

from dcf.commands.common import InboxOpt, out, resolve_settings


def sample(
    inbox: Path | None = InboxOpt,
    seed: int = typer.Option(42, "--seed", help="Random seed; the same seed writes byte-identical files."),
    force: bool = typer.Option(False, "--force", help="Write even if the inbox already has files."),
) -> None:
    """Write the SYNTHETIC sample inbox used by 'make demo': six agencies (~2% deliberately bad rows) and two editions of
    a reference workbook in the SIPRI military-expenditure layout (invented figures)."""
    from samples import generate_inbox

    settings = resolve_settings(inbox=inbox)
    if settings.inbox.exists() and any(settings.inbox.iterdir()) and not force:
        out.print(f"inbox {settings.inbox} already has files; leaving it as it is (--force to rewrite)")
        return
    manifest = generate_inbox(settings.inbox, seed=seed)
    lines = sum(f["lines"] for f in manifest["files"])
    out.print(f"wrote {len(manifest['files'])} synthetic files ({lines} lines) to {settings.inbox}")

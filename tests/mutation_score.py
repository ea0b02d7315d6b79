"""Print the mutation score of the last ``make mutate`` (mutants/mutmut-cicd-stats.json, written by mutmut)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(path: str = "mutants/mutmut-cicd-stats.json") -> int:
    stats = json.loads(Path(path).read_text(encoding="utf-8"))
    reached = stats["killed"] + stats["survived"] + stats["timeout"] + stats["suspicious"]
    score = 100 * (stats["killed"] + stats["timeout"]) / max(reached, 1)
    print(
        f"mutation score: {stats['killed'] + stats['timeout']}/{reached} killed ({score:.1f} %); "
        f"{stats['survived']} survived, {stats['no_tests']} not reached by any unit or integration test; "
        "the survivors: .venv/bin/mutmut results"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))

"""``python -m samples --inbox DIR [--seed N] [--corpus-lines N --corpus-files K]``: see samples/generate.py."""

from samples.generate import main

raise SystemExit(main())

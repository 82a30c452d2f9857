"""`python -m bot` is `maxbot`."""

from bot.cli import main

raise SystemExit(main())

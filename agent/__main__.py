"""python -m agent → trueup's command line."""

from agent.cli import main

raise SystemExit(main())

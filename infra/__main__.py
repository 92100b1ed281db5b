"""`python -m infra ...` is `shop ...` (used by the supervisor, independent of PATH)."""

from infra.cli import main

main()

"""``python -m teiten``: the command line."""

from teiten.cli.main import main

main()

"""`python -m bmprov`."""

from bmprov.cli import main

main()

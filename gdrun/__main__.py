"""`python -m gdrun` is the `gdrun` command."""

from gdrun.cli import main

main()

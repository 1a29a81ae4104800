"""`python -m gdrun` is the `gdrun` command."""

from gdrun.commands.gdrun import console

console()

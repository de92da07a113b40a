"""`python -m extproc` runs the command line, as the `extproc` script does."""

from extproc.cli import run

run()

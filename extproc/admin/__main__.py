"""`python -m extproc.admin ...`: the admin commands without the main CLI."""

import sys

from extproc.admin.commands import main

sys.exit(main())

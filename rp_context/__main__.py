"""`python -m rp_context`: the rp-context command line."""

import sys

from .cli import main

sys.exit(main())

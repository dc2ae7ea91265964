"""`python -m rp_context.cli`."""

import sys

from . import main

sys.exit(main())

"""``python -m heatpose`` (and ``torchrun -m heatpose``) runs the CLI."""

import sys

from heatpose.cli import main

sys.exit(main())

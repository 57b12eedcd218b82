"""`python -m toydlm ...` (and `accelerate launch -m toydlm audit ...`): the command line."""

import sys

from toydlm.cli import main

sys.exit(main())

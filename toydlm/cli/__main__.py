import sys

from toydlm.cli import main

sys.exit(main())

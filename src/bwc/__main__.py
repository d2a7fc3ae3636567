import sys

from bwc.cli import main

sys.exit(main())

import sys

from ksefctl.cli import main

sys.exit(main())

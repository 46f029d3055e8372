import sys

from ops.cost.command import main

sys.exit(main())

import sys

from ops.rehearse.command import main

if __name__ == "__main__":
    sys.exit(main())

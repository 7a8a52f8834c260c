"""`python -m appliance.terminal`: the terminal client, the same as the `ahoy` command."""

import sys

from .command import main

if __name__ == "__main__":
    sys.exit(main())

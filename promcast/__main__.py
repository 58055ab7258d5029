"""``python -m promcast``: the ``promcast`` command."""

import sys

from promcast.daemon.cli import main

if __name__ == "__main__":  # a spawned child process imports this module without running it
    sys.exit(main())

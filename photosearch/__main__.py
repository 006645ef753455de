"""``python -m photosearch``: the same as the ``photosearch`` command."""

import sys

from photosearch.cli import main

sys.exit(main())

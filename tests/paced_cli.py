"""``python tests/paced_cli.py SECONDS ARG…``: the photosearch command line, with a pause after
every committed indexing batch.

Tests that kill or interrupt indexing part-way use it, so that "part-way" exists on any
machine: a fast one would otherwise finish before the signal arrives, a slow one is only
slower. The pause comes after the batch's commit (and the index save that follows it), where a
real run would be decoding and encoding the next batch.
"""

from __future__ import annotations

import sys
import time

from photosearch import cli, indexer


def main() -> int:
    pause = float(sys.argv[1])
    commit = indexer.Indexer._encode_and_commit

    def paced(self: indexer.Indexer, *args: object, **kwargs: object) -> None:
        commit(self, *args, **kwargs)
        time.sleep(pause)

    indexer.Indexer._encode_and_commit = paced  # type: ignore[method-assign]
    return cli.main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())

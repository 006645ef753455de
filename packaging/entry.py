"""The bundle's entry point: the ``photosearch`` command (window, subcommands, --self-test).

A bundle built with ``packaging/build.py --with-pack DIR`` carries a model pack; on a start
that finds no pack installed in the library's models folder, it is imported first, so the app
works offline from its first start. Bundles without a pack skip this at no cost.
"""

import argparse
import sys

from photosearch.cli import main


def install_bundled_pack(argv: list[str]) -> None:
    from photosearch import config, modelpack, resources
    from photosearch.errors import PhotosearchError

    bundled = resources.bundled_packs()
    if not bundled:
        return
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--home")
    early.add_argument("--self-test", action="store_true")
    known, _ = early.parse_known_args(argv)
    if known.self_test or modelpack.list_installed(config.paths(known.home).models):
        return
    from photosearch.library import Library

    try:
        with Library(known.home) as lib:
            lib.import_pack(bundled[0])
    except PhotosearchError as e:  # e.g. another instance holds the library: next start
        print(f"photosearch: the built-in model pack was not installed: {e}", file=sys.stderr)


if __name__ == "__main__":
    install_bundled_pack(sys.argv[1:])
    sys.exit(main())

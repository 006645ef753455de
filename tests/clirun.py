"""The command line run inside the test process: ``photosearch.cli.main(argv)``, its output
captured with pytest's capsys, reported as ``subprocess.run`` would report it.

Far cheaper than a subprocess (no interpreter start, no engine imports each time), and as
strict: what ``main`` changes in the process — signal handlers, logging handlers — is checked
or put back, and a call that leaves a file under the library's home open fails, so a second
call can always open the library.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from pathlib import Path

import pytest

from photosearch.cli import main

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _open_under(folder: Path) -> set[str]:
    """The files under ``folder`` this process holds open (Linux; empty elsewhere)."""
    fds = Path("/proc/self/fd")
    if not fds.is_dir():
        return set()
    held = set()
    for fd in fds.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed while listing
            continue
        if target.startswith(str(folder) + os.sep):
            held.add(target)
    return held


def run_cli(
    capsys: pytest.CaptureFixture[str], home: Path, *args: str | bytes
) -> subprocess.CompletedProcess[str]:
    """``photosearch ARGS`` with ``home`` as PHOTOSEARCH_HOME; bytes arguments are decoded as
    Python decodes a command line (surrogate escapes)."""
    argv = [os.fsdecode(a) for a in args]
    capsys.readouterr()  # what the test printed before is not this command's output
    handlers = [signal.getsignal(s) for s in SIGNALS]
    logged = list(logging.root.handlers)
    held = _open_under(home)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PHOTOSEARCH_HOME", str(home))
        try:
            code = main(argv)
        except SystemExit as e:  # argparse: usage errors, --help, --version
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    out, err = capsys.readouterr()
    assert [signal.getsignal(s) for s in SIGNALS] == handlers, "signal handlers left changed"
    logging.root.handlers[:] = logged
    left_open = _open_under(home) - held
    assert not left_open, f"photosearch {' '.join(argv)} left files open: {sorted(left_open)}"
    return subprocess.CompletedProcess(["photosearch", *argv], code, out, err)

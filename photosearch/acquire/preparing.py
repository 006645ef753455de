"""Preparing a pack from a catalogue entry's open_clip weights: download them (resumable,
verified), export them with ``python -m photosearch.export_onnx`` in its own process, install.
Nothing here imports torch."""

from __future__ import annotations

import importlib.util
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from photosearch import modelpack
from photosearch.acquire.catalogue import Choice, Weights, choice
from photosearch.acquire.disk import WEIGHTS, _scratch, check_space
from photosearch.acquire.locations import _hf, _Hub, _key, _Meta
from photosearch.acquire.progress import ProgressFn, _Reporter
from photosearch.acquire.transfer import _fetch, _matches_etag, _translated
from photosearch.errors import DownloadError, MissingExtraError, PackError

if TYPE_CHECKING:
    from photosearch.library import Library

# What `prepare` needs beyond the runtime: the 'export' extra (module → package to install).
EXPORT_EXTRA = {"torch": "torch", "open_clip": "open_clip_torch", "onnx": "onnx"}


def export_extra_problem() -> str | None:
    """Why packs cannot be prepared here (the ``export`` extra is missing), or None. Nothing
    is imported: the export runs in its own process."""
    if getattr(sys, "frozen", False):
        return "a packaged app carries no Python tools"
    missing = []
    for module, package in EXPORT_EXTRA.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(package)
    return f"missing: {', '.join(missing)}" if missing else None


def prepare(
    library: Library,
    which: Choice | str | None = None,
    *,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    activate: bool | None = None,
    replace: bool = False,
    keep_weights: bool = False,
) -> modelpack.ModelPack:
    """Download a catalogue entry's open_clip weights (resumable, verified), export them to a
    pack (``python -m photosearch.export_onnx`` in its own process, parity gate included) and
    install it; returns the installed pack.

    Needs the ``export`` extra: :class:`MissingExtraError` says so before anything is
    downloaded. ``cancel`` stops the download (kept for resuming) or the export (discarded).
    The weights are deleted once the pack is installed, unless ``keep_weights``.
    """
    c = which if isinstance(which, Choice) else choice(which)
    _require_export_extra()
    dest = library.pack_folder(c.name)
    if dest.exists() and not replace:
        raise PackError(
            f"a pack named {dest.name!r} is already installed; pass --replace to prepare it again"
        )
    reporter = _Reporter(progress, cancel)
    cache = library.paths.cache / WEIGHTS
    plan = [_locate(w, cache, reporter) for w in [c.encoder, *([c.reranker] if c.reranker else [])]]
    total = sum(p.meta.size or 0 for p in plan)
    # The export writes fp32 graphs beside the quantised ones before keeping the smaller.
    check_space({cache: total - _arrived(plan), library.paths.models: 2 * c.pack_mb * 1_000_000})
    reporter.total = total
    weights = [_download_weights(p, reporter) for p in plan]
    pack = _export_and_install(library, c, weights, reporter, activate=activate, replace=replace)
    if not keep_weights:
        for target in weights:
            shutil.rmtree(target.parent, ignore_errors=True)
    return pack


def _require_export_extra() -> None:
    """Say what to install before anything is downloaded, rather than after a gigabyte."""
    problem = export_extra_problem()
    if problem is not None:
        raise MissingExtraError(
            "preparing a model pack needs the 'export' extra (torch, open_clip_torch, onnx), "
            f"which is not installed ({problem}). Install it with: pip install "
            "'photosearch[export]' — or download a ready pack instead: "
            "photosearch models download URL|HF_REPO"
        )


@dataclass(frozen=True)
class _Planned:
    """One weights file to download, from the hub pinned to the commit it named, so that a
    download resumed later cannot mix two versions."""

    weights: Weights
    hub: _Hub
    filename: str
    meta: _Meta
    target: Path


def _locate(w: Weights, cache: Path, reporter: _Reporter) -> _Planned:
    hub = _Hub(w.repo)
    reporter.stage("download", f"asking {hub.endpoint} for the {w.model} weights")
    filename, meta = _published_file(hub, w)
    target = cache / _key(w.repo, w.repo) / filename
    return _Planned(w, hub.pinned(meta.commit or "main"), filename, meta, target)


def _published_file(hub: _Hub, w: Weights) -> tuple[str, _Meta]:
    """The first of the weights' file names the repository holds (safetensors, else the
    pickled checkpoint), and what the hub says of it."""
    for filename in w.files:
        try:
            with _translated(hub, filename):
                return filename, hub.head(filename)
        except DownloadError as e:
            if not isinstance(e.__cause__, _hf().errors.RemoteEntryNotFoundError):
                raise
    raise DownloadError(f"{w.repo} holds none of {', '.join(w.files)}")


def _arrived(plan: list[_Planned]) -> int:
    """Bytes already on disk from earlier tries, whole files and ``.part`` files."""
    have = 0
    for p in plan:
        target = p.target
        have += target.stat().st_size if target.is_file() else 0
        have += sum(f.stat().st_size for f in target.parent.glob(f".{target.name}.*.part"))
    return have


def _download_weights(p: _Planned, reporter: _Reporter) -> Path:
    """Fetch one weights file, unless a whole one with the hub's content hash is there."""
    reporter.stage("download", f"downloading the {p.weights.model} weights ({p.filename})")
    target = p.target
    if (
        target.is_file()
        and target.stat().st_size == p.meta.size
        and _matches_etag(target, p.meta.etag)
    ):
        reporter.add(target.stat().st_size, fresh=False)
    else:
        target.unlink(missing_ok=True)
        _fetch(p.hub, p.filename, target, reporter, p.meta)
    return target


def _export_and_install(
    library: Library,
    c: Choice,
    weights: list[Path],
    reporter: _Reporter,
    *,
    activate: bool | None,
    replace: bool,
) -> modelpack.ModelPack:
    """Export into a scratch folder on the models' disk and install from there; the folder
    goes whatever happens, so a failed or cancelled export leaves nothing behind."""
    work = Path(tempfile.mkdtemp(prefix=".prepare-", dir=_scratch(library)))
    try:
        out = work / c.name
        _run_export(_export_command(c, weights, out), reporter)
        reporter.stage("install", f"installing {c.name}")
        return library.import_pack(out, activate=activate, replace=replace, move=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _export_command(c: Choice, weights: list[Path], out: Path) -> list[str]:
    """``python -m photosearch.export_onnx`` for this choice, from the downloaded weights."""
    cmd = [
        sys.executable,
        "-m",
        "photosearch.export_onnx",
        "--model",
        c.encoder.model,
        "--pretrained",
        c.encoder.tag,
        "--weights",
        str(weights[0]),
        "--quantize",
        "int8",
        "--name",
        c.name,
        "--out",
        str(out),
    ]
    if c.reranker is not None:
        cmd += ["--reranker", f"{c.reranker.model}:{c.reranker.tag}"]
        cmd += ["--reranker-weights", str(weights[1])]
    return cmd


def _run_export(cmd: list[str], reporter: _Reporter) -> None:
    """Run the exporter, passing its "… step" lines on as progress; stop it when cancelled."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}  # weights are local
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, name="export-output", daemon=True).start()
    said: list[str] = []
    try:
        while True:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                reporter.check()
                continue
            if line is None:
                break
            said.append(line)
            if line.startswith("… "):
                reporter.stage("export", line[2:])
    except BaseException:
        proc.terminate()
        proc.wait()
        raise
    if proc.wait() != 0:
        errors = [s for s in said if s.startswith("error:")] or said[-3:] or ["no output"]
        raise PackError(f"exporting the model failed: {errors[-1].removeprefix('error: ')}")

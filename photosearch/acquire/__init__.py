"""Getting a model pack onto this machine: a short curated catalogue, downloads of ready packs
(a Hugging Face repository or a URL), preparing one from open_clip weights, zip import.

Downloads speak the Hugging Face Hub protocol through huggingface_hub (``HF_ENDPOINT`` chooses
the server). Files arrive in the cache's ``downloads`` folder as hidden ``.part`` files that a
later run resumes with HTTP Range requests; each finished file is checked against the hub's own
content hash (its ETag) and, in a pack, the manifest's sha256 before anything is installed.
Free disk space is checked before anything large is written. Installing is
:meth:`Library.import_pack`: verify, stage, rename, so a failure at any point leaves no half
pack. Nothing here imports torch: :func:`prepare` loads the exporter only when called.

The parts: :mod:`.catalogue` (the known choices), :mod:`.progress` (events and cancelling),
:mod:`.locations` (hub or web folder), :mod:`.transfer` (one file, resumed and checked),
:mod:`.disk` (room and scratch folders), :mod:`.download` (ready packs), :mod:`.ready`
(published ONNX models made into packs: Immich's and rclip's repositories), :mod:`.zips` (zip
import), :mod:`.preparing` (packs made from weights) and :mod:`.components` (one pack's
reranker added to another).
"""

from photosearch.acquire.catalogue import (
    CATALOGUE,
    COCA_B32,
    DEFAULT,
    DEFAULT_READY,
    READY,
    Choice,
    Ready,
    Weights,
    choice,
    ready_model,
)
from photosearch.acquire.components import add_reranker
from photosearch.acquire.disk import DOWNLOADS, SPARE_BYTES, WEIGHTS, check_space
from photosearch.acquire.download import download_pack, find_ready
from photosearch.acquire.locations import parse_source
from photosearch.acquire.preparing import EXPORT_EXTRA, export_extra_problem, prepare
from photosearch.acquire.progress import Progress, ProgressFn
from photosearch.acquire.ready import install_ready
from photosearch.acquire.zips import MAX_MANIFEST, import_zip, install

__all__ = [
    "CATALOGUE",
    "COCA_B32",
    "DEFAULT",
    "DEFAULT_READY",
    "READY",
    "Ready",
    "DOWNLOADS",
    "EXPORT_EXTRA",
    "MAX_MANIFEST",
    "SPARE_BYTES",
    "WEIGHTS",
    "Choice",
    "Progress",
    "ProgressFn",
    "Weights",
    "add_reranker",
    "check_space",
    "choice",
    "download_pack",
    "find_ready",
    "install_ready",
    "export_extra_problem",
    "import_zip",
    "install",
    "parse_source",
    "prepare",
    "ready_model",
]

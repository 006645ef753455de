"""The vector index's file: a small checked header and the FAISS index, written atomically.

Layout: a fixed prefix (magic, format version, JSON header length, payload length, payload
CRC-32, header CRC-32), the JSON header (kind, dimension, count, the catalog generation it
reflects, …), then FAISS's own serialisation of the index (absent for an untrained IVF index,
which holds nothing). Every way a file can be wrong — missing, truncated, damaged, foreign, of
a newer format — is an :class:`IndexFileError` naming the file and the fault; the library
answers it by rebuilding the index from the catalog.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Collection
from pathlib import Path
from typing import Any, BinaryIO

import faiss

from photosearch import fsio
from photosearch.errors import PhotosearchError

FORMAT = "photosearch-vector-index"
FORMAT_VERSION = 1
MAGIC = b"PSVECIDX"
# magic, format version, JSON header length, payload length, payload CRC-32, header CRC-32
_PREFIX = struct.Struct("<8sIIQII")
_IO_BLOCK = 1 << 22


class IndexFileError(PhotosearchError):
    """A vector index file is missing, unreadable, damaged, or does not fit what was expected.

    The library answers it by rebuilding the index from the catalog.
    """

    def __init__(self, path: str | os.PathLike[str], problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"vector index {self.path}: {problem}")


def write(path: Path, header: dict[str, Any], index: faiss.Index | None) -> None:
    """Write ``header`` and ``index`` to ``path`` atomically: a crash leaves the old file or
    the new one. Raises :class:`IndexFileError` when it cannot be written."""
    try:
        with fsio.atomic_file(path, suffix=".tmp") as f:
            meta = json.dumps(header, sort_keys=True).encode()
            f.write(_PREFIX.pack(MAGIC, FORMAT_VERSION, len(meta), 0, 0, 0))
            f.write(meta)
            size, crc = (0, 0) if index is None else _write_payload(index, f)
            f.seek(0)
            f.write(_PREFIX.pack(MAGIC, FORMAT_VERSION, len(meta), size, crc, zlib.crc32(meta)))
    except OSError as e:
        raise IndexFileError(path, f"cannot be written: {e}") from e


def read(
    path: Path, *, dim: int | None, kinds: Collection[str]
) -> tuple[dict[str, Any], faiss.Index | None]:
    """The header and index of a file :func:`write` wrote, checked: its signature, version,
    sizes and checksums, a header of one of ``kinds``, vectors of ``dim`` dimensions (when
    given)."""
    try:
        f = path.open("rb")
    except FileNotFoundError as e:
        raise IndexFileError(path, "does not exist") from e
    except OSError as e:
        raise IndexFileError(path, f"cannot be read: {e}") from e
    try:
        with f:
            header, payload_size, payload_crc = _read_header(path, f, kinds)
            if dim is not None and header["dim"] != dim:
                raise IndexFileError(
                    path, f"holds {header['dim']}-dimensional vectors, expected {dim}"
                )
            start = f.tell()
            if _crc_of(f, payload_size) != payload_crc:
                raise IndexFileError(path, "is damaged (checksum mismatch)")
            f.seek(start)
            return header, (_read_payload(path, f) if payload_size else None)
    except OSError as e:
        raise IndexFileError(path, f"cannot be read: {e}") from e


def _write_payload(index: faiss.Index, f: BinaryIO) -> tuple[int, int]:
    """Stream the FAISS index into ``f``; returns (bytes written, CRC-32 of them)."""
    size = crc = 0

    def write(chunk: bytes) -> None:
        nonlocal size, crc
        f.write(chunk)
        size += len(chunk)
        crc = zlib.crc32(chunk, crc)

    writer = faiss.PyCallbackIOWriter(write, _IO_BLOCK)
    faiss.write_index(index, writer)
    del writer  # flushes its buffer
    return size, crc


def _read_header(
    path: Path, f: BinaryIO, kinds: Collection[str]
) -> tuple[dict[str, Any], int, int]:
    file_size = os.fstat(f.fileno()).st_size
    raw = f.read(_PREFIX.size)
    if not (raw.startswith(MAGIC) or MAGIC.startswith(raw)):
        raise IndexFileError(path, "is not a photosearch vector index (unknown signature)")
    if len(raw) < _PREFIX.size:
        raise IndexFileError(path, f"is truncated ({file_size} bytes)")
    _, version, meta_len, payload_size, payload_crc, meta_crc = _PREFIX.unpack(raw)
    if version > FORMAT_VERSION or version < 1:
        raise IndexFileError(
            path, f"has format version {version}; this photosearch reads {FORMAT_VERSION}"
        )
    expected = _PREFIX.size + meta_len + payload_size
    if file_size < expected:
        raise IndexFileError(path, f"is truncated ({file_size} of {expected} bytes)")
    if file_size > expected:
        raise IndexFileError(path, f"has {file_size - expected} unexpected bytes at its end")
    meta = f.read(meta_len)
    if zlib.crc32(meta) != meta_crc:
        raise IndexFileError(path, "has a damaged header (checksum mismatch)")
    try:
        header = json.loads(meta)
        ok = (
            header["format"] == FORMAT
            and header["kind"] in kinds
            and isinstance(header["dim"], int)
            and header["dim"] > 0
            and isinstance(header["count"], int)
        )
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise IndexFileError(path, "has an invalid header")
    return header, payload_size, payload_crc


def _crc_of(f: BinaryIO, size: int) -> int:
    crc = 0
    left = size
    while left:
        chunk = f.read(min(left, _IO_BLOCK))
        if not chunk:
            break
        crc = zlib.crc32(chunk, crc)
        left -= len(chunk)
    return crc


def _read_payload(path: Path, f: BinaryIO) -> faiss.Index:
    reader = faiss.PyCallbackIOReader(f.read, _IO_BLOCK)
    try:
        return faiss.read_index(reader)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        raise IndexFileError(path, f"could not be decoded by FAISS: {first}") from e
    finally:
        del reader

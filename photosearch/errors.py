"""Typed errors raised by the engine; every face (CLI, GUI) turns them into words for people."""

from __future__ import annotations


class PhotosearchError(Exception):
    """Base of every error the engine raises on purpose."""


class PackError(PhotosearchError):
    """A model pack is missing, damaged, foreign or of an unsupported format.

    ``file`` names the offending file (relative to the pack folder) when one is to blame.
    """

    def __init__(self, message: str, *, pack: str | None = None, file: str | None = None):
        self.pack = pack
        self.file = file
        where = ""
        if pack and file:
            where = f"{pack}/{file}: "
        elif file:
            where = f"{file}: "
        elif pack:
            where = f"{pack}: "
        super().__init__(f"{where}{message}")


class EncoderError(PhotosearchError):
    """An ONNX Runtime session could not be created or run."""


class DownloadError(PhotosearchError):
    """A model download failed: no network, the server refused or broke off, or what arrived
    is not what the server promised. What arrived intact is kept, so trying again resumes."""

    def __init__(self, message: str, *, url: str | None = None):
        self.url = url
        super().__init__(message)


class DownloadCancelled(PhotosearchError):
    """The person stopped a download; what arrived so far is kept for resuming."""


class DiskSpaceError(PhotosearchError):
    """Not enough free disk space for what is about to be written (checked before writing)."""

    def __init__(self, *, needed: int, free: int, where: str):
        self.needed = needed
        self.free = free
        self.where = where
        super().__init__(
            f"not enough disk space in {where}: {needed / 1e6:,.0f} MB needed, "
            f"{free / 1e6:,.0f} MB free; free some space and try again"
        )


class MissingExtraError(PhotosearchError):
    """A feature needs an optional part of photosearch that is not installed."""

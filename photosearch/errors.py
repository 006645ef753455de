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

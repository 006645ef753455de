"""Every directory the app uses, derived in one place from platformdirs.

``PHOTOSEARCH_HOME`` overrides them all, so tests and development never touch a user's data.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "photosearch"
HOME_ENV = "PHOTOSEARCH_HOME"


@dataclass(frozen=True)
class Paths:
    """The folders of one photosearch installation."""

    data: Path  # catalog, vector index, lock file
    models: Path  # installed model packs, one folder each
    cache: Path  # thumbnails, reranker image tokens, downloads in progress
    logs: Path

    def ensure(self) -> Paths:
        for p in (self.data, self.models, self.cache, self.logs):
            p.mkdir(parents=True, exist_ok=True)
        return self


def paths(home: str | os.PathLike[str] | None = None) -> Paths:
    """Resolve the app's folders: ``home`` if given, else ``$PHOTOSEARCH_HOME``, else the OS's."""
    root = home if home is not None else os.environ.get(HOME_ENV)
    if root:
        base = Path(root).expanduser().resolve()
        return Paths(
            data=base / "data", models=base / "models", cache=base / "cache", logs=base / "logs"
        )
    return Paths(
        data=Path(platformdirs.user_data_dir(APP_NAME)) / "library",
        models=Path(platformdirs.user_data_dir(APP_NAME)) / "models",
        cache=Path(platformdirs.user_cache_dir(APP_NAME)),
        logs=Path(platformdirs.user_log_dir(APP_NAME)),
    )


def slug(text: str, default: str = "pack", strip: str = "-") -> str:
    """``text`` as a safe file name: runs of anything but letters, digits, ``._-`` become
    ``-``, the ends lose ``strip`` (``default`` when nothing is left)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip(strip) or default


LANGUAGE_ENV = "PHOTOSEARCH_LANGUAGE"


def query_language() -> str | None:
    """The language queries are typed in, as a tag (``de``, ``zh-TW``): ``PHOTOSEARCH_LANGUAGE``,
    else the system locale's (``LC_ALL``, ``LC_MESSAGES``, ``LANG``); None when it says none.
    A multilingual model that wants to be told the language (NLLB-CLIP) is told this one."""
    for name in (LANGUAGE_ENV, "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(name, "").strip()
        if value:
            break
    else:
        return None
    tag = value.split(".")[0].split("@")[0].replace("_", "-")
    return None if tag in ("C", "POSIX", "") else tag

"""What the window remembers between runs (geometry, last query, history, zoom, preferences),
in an INI file beside the library's data. Keys carry a format version; an unknown older
version is dropped rather than misread."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings

VERSION = 1
HISTORY_ITEMS = 30


class State:
    def __init__(self, folder: Path) -> None:
        """``folder``: where the state file lives (the library's data folder)."""
        folder.mkdir(parents=True, exist_ok=True)
        self.settings = QSettings(str(folder / "gui.ini"), QSettings.Format.IniFormat)
        found = self.settings.value("format_version")
        if found is not None and int(found) != VERSION:
            self.settings.clear()  # a newer or older layout: start again, not misread
        self.settings.setValue("format_version", VERSION)

    def get(self, key: str, default: Any = None, kind: type | None = None) -> Any:
        if kind is None:
            return self.settings.value(f"v{VERSION}/{key}", default)
        return self.settings.value(f"v{VERSION}/{key}", default, type=kind)

    def set(self, key: str, value: Any) -> None:
        self.settings.setValue(f"v{VERSION}/{key}", value)

    def history(self) -> list[str]:
        found = self.get("history", [])
        if isinstance(found, str):  # QSettings gives a one-item list back as a string
            found = [found]
        return [str(h) for h in found or []]

    def remember_query(self, text: str) -> list[str]:
        text = text.strip()
        items = self.history()
        if text:
            items = [text] + [h for h in items if h != text]
        items = items[:HISTORY_ITEMS]
        self.set("history", items)
        return items

    def sync(self) -> None:
        self.settings.sync()

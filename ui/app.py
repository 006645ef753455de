"""Starting the desktop app: the Qt application, the crash hook, the library, the window."""

from __future__ import annotations

import html
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QLibraryInfo, QLocale, QTimer, QTranslator
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox

from photosearch import config, resources
from photosearch.errors import PhotosearchError
from photosearch.ui.crash import CrashHook
from photosearch.ui.state import State

log = logging.getLogger(__name__)

DESKTOP_ID = "io.github.photosearch.Photosearch"  # resources/linux/<id>.desktop


def display_available() -> bool:
    """Whether a window can be shown: a platform plugin that draws somewhere people see."""
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform.startswith(("offscreen", "minimal")):
        return False
    if sys.platform.startswith("linux") and not platform:
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def application(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance() or QApplication(argv or [sys.argv[0]])
    app.setApplicationName("photosearch")
    app.setOrganizationName("photosearch")
    app.setStyle("Fusion")  # follows the system's light or dark scheme (Qt ≥ 6.5)
    app.setDesktopFileName(DESKTOP_ID)  # Wayland shells match the window to its .desktop entry
    try:
        app.setWindowIcon(QIcon(str(resources.resource_path(resources.ICON))))
    except resources.ResourceError as e:
        log.warning("no window icon: %s", e)
    if not app.property("photosearch_translated"):  # once per application
        app.setProperty("photosearch_translated", True)
        install_translations(app, QLocale())
    return app  # type: ignore[return-value]


def install_translations(
    app: QApplication, locale: QLocale, folder: Path | None = None
) -> list[QTranslator]:
    """Install Qt's own strings and ours (``photosearch_<lang>.qm`` in ``folder``, by default
    the resources' translations folder) for ``locale``; returns the translators installed."""
    installed = []
    qt = QTranslator(app)
    if qt.load(locale, "qtbase", "_", QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)):
        app.installTranslator(qt)
        installed.append(qt)
    if folder is None:
        # resources/translations: photosearch.ts is the translators' template (make
        # translations); a photosearch_<lang>.qm beside it is loaded for that language.
        try:
            folder = resources.resource_path("translations")
        except resources.ResourceError as e:
            log.warning("no translations: %s", e)
            return installed
    ours = QTranslator(app)
    # English is the fallback: the source strings, with proper plurals ("1 photo", "2 photos")
    if ours.load(locale, "photosearch", "_", str(folder)) or ours.load(
        "photosearch_en", str(folder)
    ):
        app.installTranslator(ours)
        installed.append(ours)
    return installed


def run(
    home: str | None = None,
    device: str | None = None,
    *,
    screenshot: Path | None = None,
    query: str | None = None,
    examples: Sequence[str] = (),
) -> int:
    """Open the window and run until it is closed. ``screenshot``/``query``: type ``query``,
    wait for its results, save a picture of the window and quit (for the docs and tests)."""
    from photosearch.library import Library, LibraryLockedError
    from photosearch.ui.window import MainWindow

    app = application()
    paths = config.paths(home).ensure()
    hook = CrashHook(paths.logs)
    hook.install()
    state = State(paths.data)
    chosen = device or str(state.get("device", "auto"))
    threads = int(state.get("threads", 0, int)) or None
    try:
        library = Library(home, device=chosen, threads=threads)
    except LibraryLockedError:
        # The window's own words: no pid, no command-line options; the folder on its own line.
        box = QMessageBox(
            QMessageBox.Icon.Information,
            app.translate("app", "photosearch"),
            app.translate("app", "photosearch is already open for this library."),
        )
        box.setInformativeText(
            app.translate(
                "app",
                "Another photosearch window, or an indexing run in a terminal, is using the "
                "library in {folder}. Switch to that window, or close it and try again.",
            ).format(folder=f"<br><nobr>{html.escape(str(paths.data))}</nobr><br>")
        )
        box.exec()
        hook.uninstall()
        return 1
    except PhotosearchError as e:
        QMessageBox.critical(None, app.translate("app", "photosearch"), str(e))
        hook.uninstall()
        return 1
    library.serve_queries()  # `photosearch search` in a terminal asks this window
    window = MainWindow(library)
    window.set_examples(examples)
    window.show()
    if screenshot is not None:
        _shoot(window, screenshot, query or "")
    try:
        return app.exec()
    finally:
        window.shutdown()
        hook.uninstall()


def _shoot(window, path: Path, query: str) -> None:  # noqa: ANN001
    """Type ``query`` once the library is ready, wait for the final list and its thumbnails,
    save the window as an image, quit."""

    def save() -> None:
        window.thumbnails.wait(10_000)
        QApplication.processEvents()
        path.parent.mkdir(parents=True, exist_ok=True)
        window.grab().save(str(path))
        log.info("screenshot saved to %s", path)
        window.close()

    def shown(results) -> None:  # noqa: ANN001
        if not results.pending:
            QTimer.singleShot(1500, save)

    def ready(info) -> None:  # noqa: ANN001
        window.library_refreshed.disconnect(ready)
        if info.pack is None or not info.folders:
            QTimer.singleShot(500, save)  # the first-run view
            return
        window.search_field.setText(query)
        window.search_now()

    window.results_shown.connect(shown)
    window.library_refreshed.connect(ready)
    QTimer.singleShot(120_000, window.close)  # never hang a script

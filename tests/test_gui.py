"""The desktop window, driven as a person drives it (pytest-qt, offscreen): search as you type,
fast then refined results kept in place, search by example by dropping a file, indexing
progress with pause and resume, the viewer, the context menu, folders, unreadable files,
first run, and a clean close (no thread or timer left behind)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from photos import bad_inputs, good_photos  # noqa: E402
from PySide6.QtCore import QMimeData, QPointF, Qt, QTimer, QUrl  # noqa: E402
from PySide6.QtGui import QDropEvent, QGuiApplication  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from photosearch.library import Library  # noqa: E402
from photosearch.ui.crash import CrashHook  # noqa: E402
from photosearch.ui.results import ResultsModel  # noqa: E402
from photosearch.ui.thumbnails import Thumbnails  # noqa: E402
from photosearch.ui.window import MainWindow  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SYNTHETIC_PACK = Path(__file__).parent / "data" / "synthetic-pack"
WAIT_MS = 60_000


@pytest.fixture(autouse=True)
def every_test_stops_its_threads(no_leaked_threads: None) -> None:
    """The conftest check guards every GUI test: searches, indexing, thumbnails and engine
    calls all end with the test (Qt's queued signals are delivered while it waits)."""


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "Pictures"
    good_photos(folder / "a", 6)
    good_photos(folder / "b", 6, start_seed=100)
    return folder


@pytest.fixture
def library(coca_lib: Library, photos: Path) -> Library:
    """The CoCa library with ``photos`` indexed."""
    coca_lib.add_folder(photos)
    coca_lib.index_photos()
    return coca_lib  # the window closes it


def open_window(qtbot, lib: Library, *, watch: bool = False) -> MainWindow:
    window = MainWindow(lib, watch=watch)
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.library_refreshed, timeout=WAIT_MS):
        window.show()
    return window


def close(window: MainWindow) -> None:
    window.close()
    assert window._closed
    running = [
        (t.parent().metaObject().className(), t.objectName())
        for t in window.findChildren(QTimer)
        if t.isActive()
    ]
    assert not running, f"timers left running: {running}"
    assert window.thumbnails._pool.activeThreadCount() == 0


def search(qtbot, window: MainWindow, text: str, *, final: bool = True):
    """Type ``text`` as a person does and wait for its (final) list."""
    window.search_field.clear()
    shown = []
    window.results_shown.connect(shown.append)
    qtbot.keyClicks(window.search_field, text)

    def done() -> bool:
        if not shown or shown[-1].query.text != text:
            return False
        return not final or not shown[-1].pending

    qtbot.waitUntil(done, timeout=WAIT_MS)
    window.results_shown.disconnect(shown.append)
    return shown


# -- first run -------------------------------------------------------------------------------


def test_first_run_explains_how_to_get_a_model(qtbot, isolated_home: Path) -> None:
    window = open_window(qtbot, Library(isolated_home))
    assert window.stack.currentIndex() == 0  # the welcome view, not a blank window
    text = window.welcome.model_label.text()
    for command in ("models download", "models available", "models prepare", "photosearch demo"):
        assert command in text, command
    assert not window.welcome.start_button.isEnabled()
    close(window)


def test_first_run_with_a_pack_asks_for_folders_then_indexes(
    qtbot, isolated_home: Path, tiny_clip_pack: Path, photos: Path
) -> None:
    lib = Library(isolated_home)
    lib.import_pack(tiny_clip_pack)
    window = open_window(qtbot, lib, watch=True)
    assert window.stack.currentIndex() == 0
    assert "Installed" in window.welcome.model_label.text()
    progress = []
    window._watch_progress.connect(progress.append)
    window.add_folder(photos)
    qtbot.waitUntil(lambda: window.welcome.start_button.isEnabled(), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.info.indexed == 12, timeout=WAIT_MS)
    assert progress and progress[-1].done == progress[-1].total == 12
    qtbot.mouseClick(window.welcome.start_button, Qt.MouseButton.LeftButton)
    assert window.stack.currentIndex() == 1
    close(window)


def test_first_run_offers_to_download_a_model_pack(qtbot, isolated_home: Path) -> None:
    window = open_window(qtbot, Library(isolated_home))
    assert window.welcome.download_button.isVisible()
    qtbot.mouseClick(window.welcome.download_button, Qt.MouseButton.LeftButton)
    dialog = window.dialogs.get("models")
    assert dialog is not None and dialog.isVisible()
    close(window)


def test_switching_the_model_pack_reencodes_in_the_background_then_swaps(
    qtbot, library: Library, tiny_clip_pack: Path
) -> None:
    from photosearch.ui.settings import SettingsValues

    old_pack = library.pack.name
    library.import_pack(tiny_clip_pack)
    new_pack = tiny_clip_pack.name
    window = open_window(qtbot, library, watch=True)
    before = SettingsValues(
        packs=[old_pack, new_pack],
        pack=old_pack,
        device="auto",
        rerank_depth=5,
        rerank_beta=None,
        thumbnail_cache_mb=500,
        threads=0,
    )
    window.apply_settings(before, dataclasses.replace(before, pack=new_pack))
    catalog = library.catalog
    qtbot.waitUntil(
        lambda: (
            catalog.get_setting("active_pack") == new_pack
            and catalog.get_setting("pending_pack") is None
        ),
        timeout=WAIT_MS,
    )
    shown = search(qtbot, window, "a red circle")
    assert len(shown[-1]) == 12  # every photo was re-encoded with the new pack
    close(window)


# -- searching -------------------------------------------------------------------------------


def test_typing_shows_fast_then_refined_results(qtbot, library: Library) -> None:
    window = open_window(qtbot, library)
    window.refine.setValue(5)
    shown = search(qtbot, window, "a red circle")
    fast, refined = shown[0], shown[-1]
    assert not fast.refined and refined.refined and refined.rerank == 5
    assert [r.photo_id for r in window.model.results] == [r.photo_id for r in refined]
    assert window.model.rowCount() == 12
    assert "refined" in window.result_label.text()
    close(window)


def test_the_command_line_searches_while_the_window_is_open(
    qtbot, library: Library, isolated_home: Path
) -> None:
    window = open_window(qtbot, library, watch=True)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "photosearch",
            "--home",
            str(isolated_home),
            "search",
            "a red circle",
            "--json",
            "--rerank",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert len(out["results"]) == 12 and out["refined"]
    status = subprocess.run(
        [sys.executable, "-m", "photosearch", "--home", str(isolated_home), "status"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert status.returncode == 0 and "indexed: 12" in status.stdout, status.stderr
    close(window)


def test_matches_weaker_matches_and_no_good_match(
    qtbot, isolated_home: Path, calibrated_synthetic
) -> None:
    """A calibrated pack: the grid shows the matches, a switch shows the weaker ones; with no
    match it says so and still shows the closest photos; badges show relevance and refinement;
    the numbers never rise down the grid."""
    from photosearch.ui.results import badge_text

    root, _ = calibrated_synthetic
    lib = Library(isolated_home)
    lib.import_pack(root / "pack")
    lib.add_folder(root / "set" / "photos")
    lib.index_photos()
    window = open_window(qtbot, lib)
    window.refine.setValue(10)
    caption = json.loads((root / "set" / "captions.json").read_text())["annotations"][0]
    final = search(qtbot, window, caption["caption"])[-1]
    assert final.refined and 0 < final.matches < len(final)
    assert window.model.rowCount() == final.matches and not window.verdict.isVisible()
    assert window.weaker_button.isVisibleTo(window)
    weaker = len(final) - final.matches
    assert str(weaker) in window.weaker_button.text()
    assert f"{final.matches} match" in window.result_label.text()
    window.weaker_button.setChecked(True)
    assert window.model.rowCount() == len(final)
    shown = [window.model.result(i) for i in range(window.model.rowCount())]
    values = [r.relevance for r in shown]
    assert values == sorted(values, reverse=True)
    assert badge_text(shown[0]).endswith("% ✓") and "refined" in window.model.data(
        window.model.index(0), Qt.ItemDataRole.ToolTipRole
    )
    final = search(qtbot, window, "a dog on the beach")[-1]
    assert final.matches == 0 and len(final) > 0
    assert window.verdict.isVisibleTo(window) and "No good match" in window.verdict.text()
    assert "a dog on the beach" in window.verdict.text()
    assert window.model.rowCount() == len(final) and not window.weaker_button.isVisibleTo(window)
    assert window.result_label.text().startswith("0 match")
    close(window)
    lib.close()


def test_filters_that_exclude_everything_do_not_say_refining(qtbot, library: Library) -> None:
    window = open_window(qtbot, library)
    window.refine.setValue(5)
    window.filters_button.setChecked(True)
    search(qtbot, window, "a red circle")
    shown = []
    window.results_shown.connect(shown.append)
    from PySide6.QtCore import QDate

    window.filter_bar.after.setDate(QDate(2999, 1, 1))
    window.filter_bar.after_on.setChecked(True)
    qtbot.waitUntil(lambda: bool(shown) and len(shown[-1]) == 0, timeout=WAIT_MS)
    assert not shown[-1].pending and "refining" not in window.result_label.text()
    close(window)


def test_keyboard_a_new_query_starts_at_its_first_photo_and_esc_clears(
    qtbot, library: Library
) -> None:
    from PySide6.QtGui import QKeySequence

    window = open_window(qtbot, library)
    window.refine.setValue(0)
    search(qtbot, window, "a red circle")
    window.view.setCurrentIndex(window.model.index(7))  # the user moved through the grid
    search(qtbot, window, "a blue square")
    assert window.view.currentIndex().row() == 0  # Tab lands on the best match, not rank 8
    assert not window.view.selectionModel().selectedIndexes()
    window.search_field.setFocus()
    qtbot.keyClick(window.search_field, Qt.Key.Key_Escape)
    assert window.search_field.text() == "" and window.model.rowCount() == 0
    shortcuts = {
        a.text(): [k.toString() for k in a.shortcuts()]
        for m in window.menuBar().actions()
        for a in m.menu().actions()
    }
    assert "Ctrl+," in shortcuts["&Settings…"]
    assert "&About photosearch" in shortcuts and "F1" in shortcuts["&Keyboard shortcuts"]
    assert QKeySequence("Ctrl+,").toString() == "Ctrl+,"
    close(window)


def test_the_demo_window_offers_its_example_queries(qtbot, library: Library) -> None:
    window = open_window(qtbot, library)
    window._start_searching()
    window.search_field.clear()
    window.search_now()
    window.set_examples(["a red circle", "a blue square"])
    assert "a red circle" in window.grid.empty.text() and "href" in window.grid.empty.text()
    shown = []
    window.results_shown.connect(shown.append)
    window.grid.empty.linkActivated.emit("1")
    qtbot.waitUntil(lambda: bool(shown) and not shown[-1].pending, timeout=WAIT_MS)
    assert window.search_field.text() == "a blue square" and window.model.rowCount() > 0
    close(window)


def test_welcome_page_says_why_it_cannot_start(qtbot, isolated_home: Path) -> None:
    window = open_window(qtbot, Library(isolated_home))
    start = window.welcome.start_button
    assert not start.isEnabled() and "model pack" in start.toolTip()
    assert not window.zoom.isVisibleTo(window)  # no thumbnails on the welcome page
    close(window)


def test_new_photos_appear_in_the_shown_results(qtbot, library: Library, photos: Path) -> None:
    """A photo indexed while a query is shown joins its list without Enter; the photo the user
    was on stays current."""
    window = open_window(qtbot, library, watch=True)
    window.refine.setValue(0)
    search(qtbot, window, "a red circle")
    assert window.model.rowCount() == 12
    window.view.setCurrentIndex(window.model.index(3))
    current = window.model.result(3).photo_id
    good_photos(photos / "c", 1, start_seed=500)
    qtbot.waitUntil(lambda: window.model.rowCount() == 13, timeout=WAIT_MS)
    assert window.model.result(window.view.currentIndex().row()).photo_id == current
    close(window)


def test_refine_off_gives_fast_results_only(qtbot, library: Library) -> None:
    window = open_window(qtbot, library)
    window.refine.setValue(0)
    shown = search(qtbot, window, "a blue square")
    assert len(shown) == 1 and not shown[0].refined and shown[0].rerank == 0
    assert all(r.rerank_score is None for r in window.model.results)
    close(window)


def test_refined_order_arrives_in_place_keeping_the_selection(qtbot, library: Library) -> None:
    window = open_window(qtbot, library)
    window.refine.setValue(0)
    fast = search(qtbot, window, "a green circle")[-1]
    view = window.view
    view.setCurrentIndex(window.model.index(3))
    chosen = window.model.result(3).photo_id
    resets = []
    window.model.modelReset.connect(lambda: resets.append(1))
    # The refined list: the same photos, another order (as the reranker delivers it).
    refined = dataclasses.replace(fast, results=list(reversed(fast.results)), refined=True)
    window._on_results(window._generation, refined)
    assert not resets  # reordered in place: no reset, no flicker
    assert window.model.result(0).photo_id == fast.results[-1].photo_id
    assert window.model.result(view.currentIndex().row()).photo_id == chosen
    assert [window.model.result(i.row()).photo_id for i in view.selectedIndexes()] == [chosen]
    close(window)


def test_an_older_query_never_overwrites_a_newer_one(qtbot, library: Library) -> None:
    window = open_window(qtbot, library)
    window.refine.setValue(0)
    old = search(qtbot, window, "a red circle")[-1]
    search(qtbot, window, "a yellow square")
    window._on_results(window._generation - 1, old)  # late answer to the older query
    assert window.last_results.query.text == "a yellow square"
    close(window)


def test_dropping_an_image_finds_that_picture_first(
    qtbot, library: Library, photos: Path, tmp_path: Path
) -> None:
    window = open_window(qtbot, library)
    original = sorted((photos / "b").iterdir())[2]
    dropped = tmp_path / "Downloads" / f"copy{original.suffix}"
    dropped.parent.mkdir()
    shutil.copy(original, dropped)  # the same picture, from outside the library
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(dropped))])
    event = QDropEvent(
        QPointF(200, 200),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    shown = []
    window.results_shown.connect(shown.append)
    window.dropEvent(event)
    assert event.isAccepted()
    qtbot.waitUntil(lambda: bool(shown), timeout=WAIT_MS)
    assert shown[-1].query.like == dropped
    assert window.model.result(0).path == original
    assert window.like_button.isVisible()
    close(window)


@pytest.mark.skipif(
    not (SYNTHETIC_PACK / "manifest.json").exists(), reason="tests/data/synthetic-pack missing"
)
def test_typed_description_puts_the_described_scene_first(
    qtbot, isolated_home: Path, tmp_path: Path
) -> None:
    from benchmarks.synthetic import scenes

    world = scenes.World(scenes.WorldConfig())
    families = list(world.families("test", 8))
    for fam in families:
        for member, scene in fam.members.items():
            path = tmp_path / "world" / f"f{fam.index:04d}_{member}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            scene.render(64).save(path)
    lib = Library(isolated_home)
    lib.import_pack(SYNTHETIC_PACK)
    lib.add_folder(tmp_path / "world")
    lib.index_photos()
    window = open_window(qtbot, lib)
    window.refine.setValue(0)
    for fam in families:
        # The first photo shows the described objects: the scene or one of its same-words
        # distractors (which only the reranker tells apart), out of 32.
        search(qtbot, window, fam.captions["base"])
        assert window.model.result(0).path.name.startswith(f"f{fam.index:04d}_")
    close(window)


# -- the grid, viewer and context menu ---------------------------------------------------------


def test_viewer_opens_on_enter_moves_with_arrows_closes_on_escape(qtbot, library: Library) -> None:
    window = open_window(qtbot, library)
    window.refine.setValue(0)
    search(qtbot, window, "a red circle")
    window.view.setFocus()
    window.view.setCurrentIndex(window.model.index(0))
    qtbot.keyClick(window.view, Qt.Key.Key_Return)
    viewer = window.dialogs["viewer"]
    first = window.model.result(0)
    assert first.path.name in viewer.caption.text()
    assert f"{first.photo.width} × {first.photo.height}" in viewer.caption.text()
    qtbot.waitUntil(lambda: viewer._pixmap is not None, timeout=WAIT_MS)
    qtbot.keyClick(viewer, Qt.Key.Key_Right)
    assert viewer.row == 1 and window.view.currentIndex().row() == 1
    assert window.model.result(1).path.name in viewer.caption.text()
    qtbot.keyClick(viewer, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: "viewer" not in window.dialogs)
    close(window)


def test_context_menu_copies_path_and_image_and_finds_similar(qtbot, library: Library) -> None:
    window = open_window(qtbot, library)
    window.refine.setValue(0)
    search(qtbot, window, "a red circle")
    result = window.model.result(0)
    # The menu offers every action on the photo under the pointer.
    rect = window.view.visualRect(window.model.index(0))
    window._context_menu(rect.center())
    menu = next(w for w in QApplication.topLevelWidgets() if w.inherits("QMenu") and w.isVisible())
    texts = [a.text() for a in menu.actions() if a.text()]
    assert texts == ["Open", "Show in folder", "Copy path", "Copy image", "Find similar photos"]
    menu.close()

    window.copy_path(result)
    assert QGuiApplication.clipboard().text() == str(result.path)
    QGuiApplication.clipboard().clear()
    window.copy_image(result)
    qtbot.waitUntil(lambda: not QGuiApplication.clipboard().image().isNull(), timeout=WAIT_MS)
    image = QGuiApplication.clipboard().image()
    assert (image.width(), image.height()) == (result.photo.width, result.photo.height)

    shown = []
    window.results_shown.connect(shown.append)
    window.find_similar(result)
    qtbot.waitUntil(lambda: bool(shown), timeout=WAIT_MS)
    assert shown[-1].query.like == result.path and not shown[-1].query.text
    assert result.photo_id not in {r.photo_id for r in window.model.results}
    close(window)


def test_thumbnails_are_made_off_thread_and_cached_on_disk(qtbot, library: Library) -> None:
    window = open_window(qtbot, library)
    window.refine.setValue(0)
    search(qtbot, window, "a red circle")
    model = window.model
    keys = [model.data(model.index(r), Qt.ItemDataRole.UserRole + 2) for r in range(3)]
    qtbot.waitUntil(lambda: all(window.thumbnails.known(k) for k in keys), timeout=WAIT_MS)
    for k in keys:
        assert (window.thumbnails.folder / k[:2] / f"{k}.jpg").exists()
    close(window)


def test_grid_stays_quick_with_100k_results(qtbot, tmp_path: Path, library: Library) -> None:
    """The model and view only touch the rows on screen: scrolling 100,000 results is quick."""
    fast = library.search("a red circle", n=12, rerank=0)
    library.close()
    from PySide6.QtWidgets import QListView

    from photosearch.ui.results import ResultDelegate

    thumbs = Thumbnails(tmp_path / "thumbs")
    model = ResultsModel(thumbs)
    rows = [dataclasses.replace(fast[i % 12], rank=i + 1) for i in range(100_000)]
    view = QListView()
    qtbot.addWidget(view)
    view.setViewMode(QListView.ViewMode.IconMode)
    view.setUniformItemSizes(True)
    view.setResizeMode(QListView.ResizeMode.Adjust)
    view.setItemDelegate(ResultDelegate(view))
    view.setModel(model)
    view.resize(1000, 700)
    view.show()
    t0 = time.perf_counter()
    model.set_results(rows)
    QApplication.processEvents()
    for value in range(
        0, view.verticalScrollBar().maximum(), view.verticalScrollBar().maximum() // 20
    ):
        view.verticalScrollBar().setValue(value)
        view.viewport().repaint()
    elapsed = time.perf_counter() - t0
    assert elapsed < 20, f"showing and scrolling 100k results took {elapsed:.1f} s"
    thumbs.close()


# -- indexing, folders, unreadable files --------------------------------------------------------


def test_indexing_progress_pauses_resumes_and_reaches_the_end(
    qtbot, isolated_home: Path, tiny_clip_pack: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "Camera"
    good_photos(folder, 40)
    lib = Library(isolated_home)
    lib.import_pack(tiny_clip_pack)
    window = open_window(qtbot, lib, watch=True)
    progress = []
    window._watch_progress.connect(progress.append)
    window.index_status.pause_button.setChecked(True)  # as a person clicks Pause
    window.add_folder(folder)
    qtbot.waitUntil(lambda: any(p.paused and p.total == 40 for p in progress), timeout=WAIT_MS)
    assert "paused" in window.index_status.label.text()
    assert window.index_status.bar.isVisible()
    held = progress[-1].done
    time.sleep(0.5)
    QApplication.processEvents()
    assert progress[-1].done == held < 40  # nothing moves while paused
    window.index_status.pause_button.setChecked(False)
    qtbot.waitUntil(lambda: progress[-1].done == 40, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.info.indexed == 40, timeout=WAIT_MS)
    assert not window.index_status.bar.isVisible()
    close(window)


def test_unreadable_files_are_counted_and_listed_with_reasons(
    qtbot, isolated_home: Path, tiny_clip_pack: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "Mixed"
    good_photos(folder, 3)
    bad = bad_inputs(folder / "bad")
    lib = Library(isolated_home)
    lib.import_pack(tiny_clip_pack)
    lib.add_folder(folder)
    lib.index_photos()
    errors = lib.catalog.errors()
    assert errors
    window = open_window(qtbot, lib)
    button = window.index_status.errors_button
    qtbot.waitUntil(button.isVisible, timeout=WAIT_MS)
    assert str(len(errors)) in button.text()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "unreadable" in window.dialogs, timeout=WAIT_MS)
    tree = window.dialogs["unreadable"].tree
    listed = {
        tree.topLevelItem(i).text(0): tree.topLevelItem(i).text(1)
        for i in range(tree.topLevelItemCount())
    }
    assert str(bad["text as jpg"]) in listed
    assert all(reason for reason in listed.values())
    close(window)


def test_folders_dialog_lists_counts_and_removes(qtbot, library: Library, photos: Path) -> None:
    window = open_window(qtbot, library)
    dialog = window.show_folders()
    qtbot.waitUntil(
        lambda: (
            dialog.tree.topLevelItemCount() == 1 and dialog.tree.topLevelItem(0).text(1) == "12"
        ),
        timeout=WAIT_MS,
    )
    item = dialog.tree.topLevelItem(0)
    assert item.text(0) == str(photos.resolve()) and item.text(2) == "12"
    assert "up to date" in item.text(3)
    window.remove_folder(photos)
    qtbot.waitUntil(lambda: not window.info.folders, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: "No folders" in dialog.tree.topLevelItem(0).text(0), timeout=WAIT_MS)
    close(window)


# -- state, crash hook, command line --------------------------------------------------------------


def test_reopening_restores_size_and_last_query(
    qtbot, isolated_home: Path, library: Library
) -> None:
    window = open_window(qtbot, library)
    window.refine.setValue(0)
    search(qtbot, window, "a red circle")
    window.resize(700, 500)
    close(window)
    again = open_window(qtbot, Library(isolated_home))
    assert again.search_field.text() == "a red circle"
    assert (again.width(), again.height()) == (700, 500), again.size()
    assert "a red circle" in again.state.history() or again.search_field.text()
    qtbot.waitUntil(lambda: again.model.rowCount() == 12, timeout=WAIT_MS)
    close(again)


def test_crash_hook_writes_a_log_and_offers_the_text_to_copy(qtbot, tmp_path: Path) -> None:
    hook = CrashHook(tmp_path / "logs")
    try:
        raise ValueError("something unexpected")
    except ValueError as e:
        hook.handle(type(e), e, e.__traceback__)
    logs = list((tmp_path / "logs").glob("crash-*.log"))
    assert logs and "ValueError: something unexpected" in logs[0].read_text()
    qtbot.waitUntil(lambda: bool(hook.dialogs))
    dialog = hook.dialogs[0]
    qtbot.mouseClick(dialog.copy_button, Qt.MouseButton.LeftButton)
    assert "something unexpected" in QGuiApplication.clipboard().text()
    dialog.close()


def test_no_display_falls_back_to_the_info_text(capsys, monkeypatch) -> None:
    from photosearch import cli

    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    assert "photosearch" in out and "photosearch gui" in out


@pytest.mark.skipif(not shutil.which("xvfb-run"), reason="xvfb-run not installed (apt: xvfb)")
def test_real_app_under_xvfb_searches_and_saves_a_screenshot(tmp_path: Path) -> None:
    shot = tmp_path / "screenshot.png"
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "screenshot.py"),
            "--out",
            str(shot),
            "--home",
            str(tmp_path / "shot-home"),
        ],
        env={k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert shot.exists() and shot.stat().st_size > 10_000


def test_qt_bindings_keep_none_alive(qtbot) -> None:
    """PySide6 6.12.0 on Python 3.11 lost a reference to None on every Qt call returning
    nothing, so a long session aborted ("none_dealloc"); pyproject excludes it. This guards
    whatever version is installed."""
    import sys

    from PySide6.QtWidgets import QLabel

    label = QLabel()
    qtbot.addWidget(label)
    before = sys.getrefcount(None)
    for _ in range(2000):
        label.setText("x")
    assert sys.getrefcount(None) > before - 100


# -- translations ----------------------------------------------------------------------------


def lupdate() -> str:
    tool = shutil.which("pyside6-lupdate") or str(Path(sys.executable).parent / "pyside6-lupdate")
    if not Path(tool).exists():
        pytest.skip("pyside6-lupdate is not installed")
    return tool


def messages(ts: Path) -> set[tuple[str, str]]:
    import xml.etree.ElementTree as ET

    root = ET.parse(ts).getroot()
    return {
        (ctx.findtext("name"), m.findtext("source"))
        for ctx in root.iter("context")
        for m in ctx.iter("message")
    }


def test_translators_template_holds_every_string_the_window_shows(tmp_path: Path) -> None:
    """Every user-visible string is extractable (literal, through tr/translate) and the
    committed template is current (make translations)."""
    fresh = tmp_path / "fresh.ts"
    sources = sorted(str(p) for p in (ROOT / "ui").glob("*.py"))
    subprocess.run(
        [lupdate(), *sources, "-no-obsolete", "-locations", "none", "-ts", str(fresh)],
        check=True,
        capture_output=True,
    )
    extracted = messages(fresh)
    assert len(extracted) > 100
    assert ("MainWindow", "Describe a photo…") in extracted
    assert ("WatchWords", "%n photo(s) indexed") in extracted
    template_text = (ROOT / "resources" / "translations" / "photosearch.ts").read_text()
    for plural in ("%n photo(s) indexed", "%n photo(s)", ", %n unreadable"):  # numerus forms
        assert f'<message numerus="yes">\n        <source>{plural}</source>' in template_text
    assert all(ctx for ctx, _ in extracted), "a string was extracted without its context"
    template = messages(ROOT / "resources" / "translations" / "photosearch.ts")
    assert extracted == template, (
        f"run make translations: new {sorted(extracted - template)[:5]}, "
        f"gone {sorted(template - extracted)[:5]}"
    )
    plurals = {m for m in template if "%n" in m[1]}
    english = messages(ROOT / "resources" / "translations" / "photosearch_en.ts")
    assert plurals <= english, f"give photosearch_en.ts the plurals of {sorted(plurals - english)}"


def test_a_translation_for_the_users_language_is_used(
    qtbot, tmp_path: Path, isolated_home: Path
) -> None:
    from PySide6.QtCore import QLocale

    from photosearch.ui.app import install_translations

    lrelease = Path(lupdate()).with_name("pyside6-lrelease")
    ts = tmp_path / "photosearch_de.ts"
    ts.write_text(
        '<?xml version="1.0" encoding="utf-8"?><!DOCTYPE TS><TS version="2.1" language="de">'
        "<context><name>MainWindow</name><message><source>Describe a photo…</source>"
        "<translation>Beschreibe ein Foto…</translation></message></context></TS>",
        encoding="utf-8",
    )
    subprocess.run([str(lrelease), str(ts)], check=True, capture_output=True)
    app = QApplication.instance()
    installed = install_translations(app, QLocale("de_DE"), tmp_path)
    try:
        assert installed, "the German translation was not loaded"
        window = MainWindow(Library(isolated_home), watch=False)
        qtbot.addWidget(window)
        assert window.search_field.placeholderText() == "Beschreibe ein Foto…"
        window.close()
    finally:
        for t in installed:
            app.removeTranslator(t)
    installed = install_translations(app, QLocale("C"))  # the shipped English plurals
    try:
        assert QApplication.translate("MainWindow", "%n photo(s)", "", 1) == "1 photo"
        assert QApplication.translate("MainWindow", "%n photo(s)", "", 96) == "96 photos"
        assert QApplication.translate("MainWindow", "%n match(es)", "", 0) == "0 matches"
        assert QApplication.translate("MainWindow", "%n match(es)", "", 1) == "1 match"
        assert QApplication.translate("WatchWords", "%n photo(s) indexed", "", 3) == (
            "3 photos indexed"
        )
    finally:
        for t in installed:
            app.removeTranslator(t)
    installed = install_translations(app, QLocale("fr_FR"), tmp_path)  # none of ours for French
    try:
        text = QApplication.translate("MainWindow", "Describe a photo…")
        assert text == "Describe a photo…"
    finally:
        for t in installed:
            app.removeTranslator(t)


# -- light and dark --------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_results_follow_the_light_or_dark_palette(qtbot, library: Library, scheme: str) -> None:
    """Nothing in the window hard-codes a colour that breaks on the other scheme: the grid's
    background and captions come from the palette the system gives."""
    from PySide6.QtGui import QColor, QPalette

    app = QApplication.instance()
    before = app.palette()
    pal = QPalette(before)
    light = scheme == "light"
    base, text = (
        (QColor("#ffffff"), QColor("#101010")) if light else (QColor("#1e1e1e"), QColor("#f0f0f0"))
    )
    for role, color in [
        (QPalette.ColorRole.Window, base),
        (QPalette.ColorRole.Base, base),
        (QPalette.ColorRole.AlternateBase, base.darker(110) if light else base.lighter(130)),
        (QPalette.ColorRole.Text, text),
        (QPalette.ColorRole.WindowText, text),
    ]:
        pal.setColor(role, color)
    app.setPalette(pal)
    try:
        window = open_window(qtbot, library)
        window.resize(900, 700)
        search(qtbot, window, "a red circle")
        image = window.view.viewport().grab().toImage()
        lum = sorted(
            QColor(image.pixel(x, y)).lightness()
            for x in range(0, image.width(), 7)
            for y in range(0, image.height(), 7)
        )
        background = lum[len(lum) // 2]  # most of the grid is background
        assert (background > 200) if light else (background < 60), background
        # captions are drawn: pixels of the text colour's lightness exist
        assert any(abs(v - text.lightness()) < 40 for v in lum)
        close(window)
    finally:
        app.setPalette(before)


def test_the_app_has_its_icon_and_desktop_entry() -> None:
    from photosearch.ui.app import DESKTOP_ID, application

    app = application()
    assert not app.windowIcon().isNull()
    assert app.desktopFileName() == DESKTOP_ID
    assert (ROOT / "resources" / "linux" / f"{DESKTOP_ID}.desktop").is_file()


def test_switching_and_removing_packs_runs_off_the_gui_thread(
    qtbot, coca_lib: Library, tiny_clip_pack: Path
) -> None:
    """Use and Remove in the model-pack dialog run on the window's task thread (they wait for
    an indexing run and delete a folder of a GB): the window keeps answering meanwhile."""
    import threading

    coca_lib.import_pack(tiny_clip_pack, activate=False)
    window = open_window(qtbot, coca_lib)
    dialog = window.show_models()
    packs = dialog.packs
    where: list[bool] = []
    real_use = coca_lib.use_pack

    def use(name: str) -> bool:
        where.append(threading.current_thread() is threading.main_thread())
        return real_use(name)

    coca_lib.use_pack = use  # type: ignore[method-assign]
    names = [r.name for r in packs.rows]
    packs.tree.setCurrentItem(packs.tree.topLevelItem(names.index(tiny_clip_pack.name)))
    packs.use_selected()
    assert not packs.use_button.isEnabled()  # busy until the task is done
    qtbot.waitUntil(lambda: coca_lib.packs.active_name() == tiny_clip_pack.name, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not packs._busy, timeout=WAIT_MS)
    assert where == [False]
    names = [r.name for r in packs.rows]
    other = next(n for n in names if n != tiny_clip_pack.name)
    packs.tree.setCurrentItem(packs.tree.topLevelItem(names.index(other)))
    packs.remove_selected(confirm=False)
    qtbot.waitUntil(lambda: [r.name for r in packs.rows] == [tiny_clip_pack.name], timeout=WAIT_MS)
    dialog.close()
    close(window)

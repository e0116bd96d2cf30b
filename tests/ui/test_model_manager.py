"""The model manager in a real (offscreen) Qt window, downloading from a real loopback server."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QTabBar

from app.core.settings import Settings
from app.models.catalog import Catalog, load_catalog
from app.models.context import AppContext
from app.models.location import ModelsDir
from app.models.store import ModelStore
from app.ui.main_window import MainWindow
from app.ui.model_manager import ModelManager
from tests.support.entries import blob, entry_for
from tests.support.http_server import FileServer


def context_for(tmp_path: Path, catalog: Catalog) -> AppContext:
    models = ModelsDir(tmp_path / "models", "--models-dir")
    return AppContext(Settings(), catalog, models, ModelStore(models.path, catalog))


def open_window(qtbot, tmp_path: Path, catalog: Catalog) -> tuple[MainWindow, ModelManager]:
    window = MainWindow(context_for(tmp_path, catalog))
    qtbot.addWidget(window)
    return window, window.model_manager


def until_idle(qtbot, manager: ModelManager):
    """Wait (around the action in the with-block) until the manager's background task has ended."""
    return qtbot.waitSignal(manager.busy_changed, timeout=20_000, check_params_cb=lambda busy: not busy)


def test_window_lists_the_real_catalog(qtbot, tmp_path: Path) -> None:
    catalog = load_catalog()
    window, manager = open_window(qtbot, tmp_path, catalog)
    assert manager.table.rowCount() == len(catalog)
    assert manager.state_text("inswapper_128_fp16") == "missing"
    assert "non-commercial" in manager.table.item(manager._rows["inswapper_128_fp16"], 3).text()
    assert f"0 of {len(catalog)} models present." in [e.text for e in window.status.entries()]
    assert "Download default set" in window.statusBar().currentMessage()  # the call to act, last


def served(file_server: FileServer, model_id: str, data: bytes, hold_s: float) -> Catalog:
    """A catalog of one model whose file the loopback server sends, slowed by hold_s per chunk."""
    file_server.files[f"/{model_id}.onnx"] = data
    file_server.hold_s = hold_s
    return Catalog([entry_for(model_id, data, [file_server.url(f"{model_id}.onnx")])])


def _front_bottom_tab(window: MainWindow) -> str:
    bar = next(
        b for b in window.findChildren(QTabBar) if "Models" in [b.tabText(i) for i in range(b.count())]
    )
    return bar.tabText(bar.currentIndex())


def test_first_start_without_a_real_model_puts_the_model_manager_in_front(qtbot, tmp_path: Path) -> None:
    window, _ = open_window(qtbot, tmp_path, load_catalog())
    window.show()
    qtbot.waitExposed(window)
    assert _front_bottom_tab(window) == "Models"
    assert any(e.level == "warning" and "Download default set" in e.text for e in window.status.entries())


def test_with_a_real_model_the_messages_stay_in_front(qtbot, tmp_path: Path) -> None:
    data = blob(4_000, seed=3)
    entry = entry_for("gui_real", data, ["https://example.invalid/gui_real.onnx"])
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / entry.file).write_bytes(data)  # its catalog hash: present, not a stand-in
    window, _ = open_window(qtbot, tmp_path, Catalog([entry]))
    window.show()
    qtbot.waitExposed(window)
    assert _front_bottom_tab(window) == "Messages"


def test_download_selected_with_progress(qtbot, tmp_path: Path, file_server: FileServer) -> None:
    data = blob(3_000_000, seed=7)
    window, manager = open_window(qtbot, tmp_path, served(file_server, "gui_model", data, 0.002))
    seen: list[int] = []
    manager.progress_bar("gui_model").valueChanged.connect(seen.append)

    manager.table.selectRow(0)
    with until_idle(qtbot, manager):
        qtbot.mouseClick(manager.download_selected_button, Qt.MouseButton.LeftButton)

    assert manager.state_text("gui_model") == "present"
    assert manager.progress_bar("gui_model").value() == 1000
    assert any(0 < v < 1000 for v in seen), "progress was shown while downloading"
    assert (tmp_path / "models" / "gui_model.onnx").read_bytes() == data
    assert "1 model(s) ready" in window.statusBar().currentMessage()


def test_cancel_keeps_part_and_close_joins_thread(qtbot, tmp_path: Path, file_server: FileServer) -> None:
    data = blob(4_000_000, seed=8)
    window, manager = open_window(qtbot, tmp_path, served(file_server, "gui_slow", data, 0.02))

    manager.download(list(manager.ctx.catalog))
    qtbot.waitUntil(lambda: 0 < manager.progress_bar("gui_slow").value() < 1000, timeout=10_000)
    with until_idle(qtbot, manager):
        qtbot.mouseClick(manager.cancel_button, Qt.MouseButton.LeftButton)
    assert manager.state_text("gui_slow") == "partial"
    assert (tmp_path / "models" / "gui_slow.onnx.part").exists()
    assert not (tmp_path / "models" / "gui_slow.onnx").exists()

    manager.download(list(manager.ctx.catalog))  # resumes; closing the window cancels and joins
    window.close()
    assert not manager.is_busy()


def test_verify_flags_a_corrupt_file(qtbot, tmp_path: Path) -> None:
    data = blob(10_000, seed=9)
    entry = entry_for("gui_verify", data, ["https://example.org/v.onnx"])
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "gui_verify.onnx").write_bytes(bytes(len(data)))
    window, manager = open_window(qtbot, tmp_path, Catalog([entry]))
    with until_idle(qtbot, manager):
        qtbot.mouseClick(manager.verify_button, Qt.MouseButton.LeftButton)
    assert manager.state_text("gui_verify") == "corrupt"
    assert "corrupt: gui_verify" in window.statusBar().currentMessage()


def test_failed_download_is_an_error_with_a_retry(qtbot, tmp_path: Path, file_server: FileServer) -> None:
    entry = entry_for("gui_gone", b"x" * 64, [file_server.url("gone.onnx")])
    window, manager = open_window(qtbot, tmp_path, Catalog([entry]))
    problems: list[str] = []
    manager.problem.connect(problems.append)
    assert not manager.retry_button.isEnabled()
    with until_idle(qtbot, manager):
        manager.download(list(manager.ctx.catalog))
    assert manager.state_text("gui_gone") == "missing"
    assert any("gone.onnx: HTTP 404 Not Found" in p for p in problems)
    assert "0 of 1 models ready; 1 did not finish" in window.statusBar().currentMessage()
    errors = [e.text for e in window.status.entries() if e.level == "error"]
    assert any("gone.onnx: HTTP 404 Not Found" in text for text in errors)  # not with the info icon
    assert manager.retry_button.isEnabled()

    file_server.files["/gone.onnx"] = b"x" * 64  # the server has it now
    with until_idle(qtbot, manager):
        qtbot.mouseClick(manager.retry_button, Qt.MouseButton.LeftButton)
    assert manager.state_text("gui_gone") == "present" and not manager.retry_button.isEnabled()


def test_download_what_the_settings_need(qtbot, tmp_path: Path, file_server: FileServer) -> None:
    data = blob(200_000, seed=11)
    catalog = served(file_server, "gui_needed", data, 0.0)
    ctx = context_for(tmp_path, catalog)
    manager = ModelManager(ctx, needed=lambda: ["gui_needed"])
    qtbot.addWidget(manager)
    assert manager.download_needed_button.isVisibleTo(manager)
    with until_idle(qtbot, manager):
        qtbot.mouseClick(manager.download_needed_button, Qt.MouseButton.LeftButton)
    assert manager.state_text("gui_needed") == "present"
    messages: list[str] = []
    manager.message.connect(messages.append)
    manager.download_needed()  # nothing left to fetch: said so, nothing started
    assert messages == ["Every model the current settings need is already here."]
    manager.shutdown()

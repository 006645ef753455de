"""The design's boundaries, checked mechanically: engine without Qt, runtime without torch."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parent.parent
ENGINE = ROOT / "photosearch"
FORBIDDEN_IN_ENGINE = (
    "photosearch.ui",
    "photosearch.export_onnx",
    "PySide6",
    "shiboken6",
    "torch",
    "open_clip",
)


def engine_modules() -> list[str]:
    mods = []
    for f in sorted(ENGINE.rglob("*.py")):
        rel = f.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
            if parts == ["photosearch"]:
                continue  # the root package is also the parent of photosearch.ui
        mods.append(".".join(parts))
    return mods


def test_import_linter_contracts_hold() -> None:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint, "import-linter is not installed (it is in the 'dev' extra)"
    run = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout


def _contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def test_boundary_contracts_cover_the_whole_engine_without_a_list() -> None:
    """A new engine module is checked for Qt and torch without anyone editing a list."""
    forbidden = [c for c in _contracts() if c["type"] == "forbidden"]
    assert {tuple(c["forbidden_modules"][:1]) for c in forbidden} == {("PySide6",), ("torch",)}
    for contract in forbidden:
        assert contract["source_modules"] == ["photosearch"], contract["name"]


def test_layers_contract_catches_an_import_up_through_an_unplaced_module(tmp_path: Path) -> None:
    """A new module not yet given a layer cannot smuggle an upward import: the catalog
    importing it, and it importing search, breaks the contract (the chain is checked)."""
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint
    copy = tmp_path / "repo"
    shutil.copytree(ENGINE, copy / "photosearch")
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    (copy / "photosearch" / "newcomer.py").write_text("from photosearch import search\n")
    with (copy / "photosearch" / "catalog.py").open("a") as f:
        f.write("\nfrom photosearch import newcomer  # noqa\n")
    run = subprocess.run(
        [lint, "--config", str(copy / "pyproject.toml")],
        cwd=copy,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(copy)},
    )
    assert run.returncode != 0
    assert "photosearch.catalog -> photosearch.newcomer" in run.stdout, run.stdout


def _imports(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):  # includes imports inside functions (lazy imports)
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


# The one sanctioned crossing: `photosearch` / `photosearch gui` opens the window, importing the
# interface inside the function that does so (never at module level: the engine still imports
# with Qt absent, which test_engine_imports_with_qt_and_torch_unavailable checks).
ALLOWED = {("photosearch.cli.commands.gui", "photosearch.ui.app")}


@pytest.mark.parametrize("module", engine_modules())
def test_engine_module_imports_nothing_forbidden(module: str) -> None:
    path = ROOT / (module.replace(".", "/") + ".py")
    if not path.exists():
        path = ROOT / module.replace(".", "/") / "__init__.py"
    bad = sorted(
        name
        for name in _imports(ast.parse(path.read_text()))
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN_IN_ENGINE)
        and (module, name) not in ALLOWED
    )
    assert bad == [], f"{module} imports {bad}"


def test_engine_imports_with_qt_and_torch_unavailable() -> None:
    """A headless install without PySide6 or torch still runs the whole engine."""
    mods = [m for m in engine_modules() if m != "photosearch.__main__"]
    code = textwrap.dedent(
        f"""
        import importlib, sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("PySide6", "shiboken6", "torch", "open_clip"):
                    raise ImportError(f"blocked for this test: {{name}}")
        sys.meta_path.insert(0, Block())
        for m in {mods!r}:
            importlib.import_module(m)
        print("ok")
        """
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "ok"


def test_wheel_maps_ui_and_export_onnx_into_photosearch(tmp_path: Path) -> None:
    """package-dir mapping: ui/ and export_onnx/ install as photosearch.ui / .export_onnx."""
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = (tmp_path / "dist").glob("photosearch-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "photosearch/__init__.py",
        "photosearch/modelpack.py",
        "photosearch/ui/__init__.py",
        "photosearch/export_onnx/exporter.py",
        "photosearch/export_onnx/model_configs/photosearch-tiny-coca.json",
    ):
        assert expected in names
    assert not any(n.startswith(("ui/", "export_onnx/", "tests/")) for n in names)

    target = tmp_path / "site"
    inst = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert inst.returncode == 0, inst.stderr
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import photosearch, photosearch.ui, photosearch.modelpack;print(photosearch.__file__)",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip().startswith(str(target))

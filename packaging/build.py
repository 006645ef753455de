"""Build the photosearch desktop bundle (PyInstaller, one folder) and its Linux packages.

    python packaging/build.py --flavour cpu|gpu [--with-pack DIR] [--tar] [--deb]

Each flavour is built in its own virtual environment (``build/venv-cpu``, ``build/venv-gpu``):
onnxruntime and onnxruntime-gpu install into the same folder, so they never share one. The
project is installed there non-editable, without its dependencies, and the dependencies are
installed from ``pyproject.toml``'s list with the ONNX Runtime requirement replaced by the
flavour's: one source of truth, no second list to forget. torch and open_clip are never
installed there, and the spec excludes them as well.

Outputs (``build/dist-FLAVOUR/``): the bundle ``photosearch/``, and with ``--tar`` /
``--deb`` ``photosearch-VERSION-linux-x86_64-FLAVOUR.tar.gz`` and
``photosearch[-gpu]_VERSION_amd64.deb``. ``--with-pack DIR`` copies a verified model pack into
the bundle (``_internal/resources/packs/NAME``): the installed app imports it on first start, so
it works offline from the first minute. Sizes are printed at the end (and ``--json FILE``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"
RESOURCES = ROOT / "resources"
PYINSTALLER = "pyinstaller==6.22.3"
ORT = {"cpu": "onnxruntime>=1.20", "gpu": "onnxruntime-gpu>=1.20"}
APP_ID = "io.github.photosearch.Photosearch"
# Never in a bundle: the runtime is ONNX Runtime alone (DESIGN.md). Checked after the build.
FORBIDDEN = ("torch", "torchvision", "open_clip", "timm", "onnxscript", "export_onnx")


def log(msg: str) -> None:
    print(f"[build] {msg}", flush=True)


def run(cmd: list[str], **kw) -> None:
    log(" ".join(str(c) for c in cmd))
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def requirements(flavour: str) -> list[str]:
    """The project's runtime dependencies with ONNX Runtime chosen by flavour, not by markers."""
    deps = [d for d in project()["dependencies"] if not re.match(r"onnxruntime\b", d)]
    return [*deps, ORT[flavour], PYINSTALLER]


def venv(flavour: str, build: Path) -> Path:
    """The flavour's own environment; dependencies reinstalled only when their list changes."""
    env = build / f"venv-{flavour}"
    py = env / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    if not py.exists():
        run([sys.executable, "-m", "venv", env])
        run([py, "-m", "pip", "install", "-q", "--upgrade", "pip", "setuptools", "wheel"])
    reqs = requirements(flavour)
    stamp = env / ".photosearch-requirements"
    if not stamp.exists() or stamp.read_text() != "\n".join(reqs):
        run([py, "-m", "pip", "install", "-q", *reqs])
        stamp.write_text("\n".join(reqs))
    # The project itself, non-editable, every time (its sources change between builds).
    run([py, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", ROOT])
    probe = (
        "import importlib.util as u, sys; "
        f"bad = [m for m in {FORBIDDEN[:4]!r} if u.find_spec(m)]; "
        "ort = [m for m in ('onnxruntime',) if u.find_spec(m)]; "
        "sys.exit(f'forbidden in the build environment: {bad}' if bad else 0 if ort else "
        "'onnxruntime missing')"
    )
    run([py, "-c", probe])
    return py


def pyinstaller(py: Path, flavour: str, build: Path, pack: Path | None) -> Path:
    dist, work = build / f"dist-{flavour}", build / f"work-{flavour}"
    env = dict(os.environ, PHOTOSEARCH_FLAVOUR=flavour, PHOTOSEARCH_WITH_PACK=str(pack or ""))
    run(
        [py, "-m", "PyInstaller", PACKAGING / "photosearch.spec", "--noconfirm", "--clean",
         "--log-level", "WARN", "--distpath", dist, "--workpath", work],
        env=env,
        cwd=build,  # not the source tree: `photosearch` must be the installed package
    )  # fmt: skip
    bundle = dist / "photosearch"
    where = "import photosearch, pathlib; print(pathlib.Path(photosearch.__file__).parent)"
    found = subprocess.run([py, "-c", where], capture_output=True, text=True, cwd=build)
    package = Path(found.stdout.strip())  # the installed package (cwd: not the source tree)
    check_bundle(bundle, package / "_resources")
    return bundle


def check_bundle(bundle: Path, resources: Path) -> None:
    """Every resource inside, no torch (or other export-time package), and the program starts."""
    inside = bundle / "_internal" / "resources"
    missing = [
        str(f.relative_to(resources))
        for f in resources.rglob("*")
        if f.is_file() and "__pycache__" not in f.parts
        and not (inside / f.relative_to(resources)).is_file()
    ]  # fmt: skip
    if missing or not resources.is_dir():
        raise SystemExit(f"build: resources missing from the bundle: {missing or resources}")
    bad = [
        str(p.relative_to(bundle))
        for p in bundle.rglob("*")
        if any(p.name == f or p.name.startswith((f + "-", f + ".", "lib" + f)) for f in FORBIDDEN)
    ]
    if bad:
        raise SystemExit(f"build: export-time packages leaked into the bundle: {bad[:10]}")
    exe = bundle / ("photosearch.exe" if sys.platform == "win32" else "photosearch")
    with tempfile.TemporaryDirectory() as home:  # `info` loads ONNX Runtime, numpy, the engine
        out = subprocess.run(
            [exe, "--home", home, "info"],
            capture_output=True,
            text=True,
            timeout=120,
            env=dict(os.environ, QT_QPA_PLATFORM="offscreen"),
        )
    if out.returncode != 0:
        raise SystemExit(f"build: the bundle does not start:\n{out.stdout}{out.stderr}")
    log(f"bundle starts: {out.stdout.splitlines()[0]}")


def du(path: Path) -> int:
    """Bytes of the regular files under ``path`` (links not followed)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def make_tar(bundle: Path, flavour: str, version: str) -> Path:
    system = {"linux": "linux", "darwin": "macos", "win32": "windows"}.get(sys.platform, "os")
    out = bundle.parent / f"photosearch-{version}-{system}-{platform.machine()}-{flavour}.tar.gz"
    log(f"writing {out.name}")
    with tarfile.open(out, "w:gz", compresslevel=6) as tar:
        tar.add(bundle, arcname=f"photosearch-{version}")
    return out


def make_deb(bundle: Path, flavour: str, version: str) -> Path:
    """A .deb: the bundle in /opt/photosearch, a /usr/bin link, desktop entry, icons, metainfo."""
    name = "photosearch" if flavour == "cpu" else "photosearch-gpu"
    other = "photosearch-gpu" if flavour == "cpu" else "photosearch"
    root = bundle.parent / "deb-root"
    shutil.rmtree(root, ignore_errors=True)
    opt = root / "opt" / "photosearch"
    shutil.copytree(bundle, opt, symlinks=True)
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "photosearch").symlink_to("/opt/photosearch/photosearch")
    share = root / "usr" / "share"
    linux = RESOURCES / "linux"
    for src, dest in (
        (linux / f"{APP_ID}.desktop", share / "applications" / f"{APP_ID}.desktop"),
        (linux / f"{APP_ID}.metainfo.xml", share / "metainfo" / f"{APP_ID}.metainfo.xml"),
        (RESOURCES / "icons" / "photosearch.svg", share / "icons/hicolor/scalable/apps"),
        (RESOURCES / "icons" / "photosearch-256.png", share / "icons/hicolor/256x256/apps"),
    ):
        target = dest / f"{APP_ID}{src.suffix}" if not dest.suffix else dest
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    doc = share / "doc" / name
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
        "Upstream-Name: photosearch\n\nFiles: *\nCopyright: photosearch developers\n"
        "License: MIT\n"
    )
    control = (PACKAGING / "linux" / "control.in").read_text()
    fields = {
        "PACKAGE": name,
        "CONFLICTS": other,
        "VERSION": version,
        "INSTALLED_SIZE": str(du(root) // 1024),
        "FLAVOUR": "CPU" if flavour == "cpu" else "GPU (CUDA when present, else CPU)",
    }
    for key, value in fields.items():
        control = control.replace(f"@{key}@", value)
    (root / "DEBIAN").mkdir()
    (root / "DEBIAN" / "control").write_text(control)
    out = bundle.parent / f"{name}_{version}_amd64.deb"
    run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", root, out])
    shutil.rmtree(root)
    return out


def validate_metadata() -> None:
    """appstreamcli and desktop-file-validate, when this system has them."""
    linux = RESOURCES / "linux"
    if shutil.which("appstreamcli"):
        run(["appstreamcli", "validate", "--no-net", linux / f"{APP_ID}.metainfo.xml"])
    else:
        log("appstreamcli not found (apt-get install appstream): metainfo not validated")
    if shutil.which("desktop-file-validate"):
        run(["desktop-file-validate", linux / f"{APP_ID}.desktop"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flavour", choices=sorted(ORT), default="cpu")
    parser.add_argument("--with-pack", metavar="DIR", type=Path, help="put this pack inside")
    parser.add_argument("--tar", action="store_true", help="also write a .tar.gz")
    parser.add_argument("--deb", action="store_true", help="also write a .deb (dpkg-deb)")
    parser.add_argument("--build-dir", type=Path, default=ROOT / "build")
    parser.add_argument("--json", metavar="FILE", type=Path, help="write sizes and paths here")
    args = parser.parse_args(argv)
    if args.deb and sys.platform != "linux":
        parser.error("--deb builds on Linux; see docs/packaging.md for Windows and macOS")
    if args.with_pack and not (args.with_pack / "manifest.json").is_file():
        parser.error(f"--with-pack: no manifest.json in {args.with_pack}")
    if args.with_pack:  # every checksum, now: not on a user's first start
        sys.path.insert(0, str(ROOT))
        from photosearch import modelpack
        from photosearch.errors import PackError

        try:
            modelpack.verify(args.with_pack, full=True)
        except PackError as e:
            parser.error(f"--with-pack: {e}")
    version = project()["version"]
    build = args.build_dir.resolve()
    build.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    if args.deb:
        validate_metadata()
    py = venv(args.flavour, build)
    pack = args.with_pack.resolve() if args.with_pack else None
    bundle = pyinstaller(py, args.flavour, build, pack)
    report = {
        "flavour": args.flavour,
        "version": version,
        "bundle": str(bundle),
        "bundle_bytes": du(bundle),
        "with_pack": str(pack) if pack else None,
    }
    if args.tar:
        tar = make_tar(bundle, args.flavour, version)
        report |= {"tar": str(tar), "tar_bytes": tar.stat().st_size}
    if args.deb:
        deb = make_deb(bundle, args.flavour, version)
        report |= {"deb": str(deb), "deb_bytes": deb.stat().st_size}
    report["seconds"] = round(time.monotonic() - t0, 1)
    for key in ("bundle", "tar", "deb"):
        if key in report:
            size = report[f"{key}_bytes"] / 2**20
            log(f"{key}: {report[key]} ({size:.1f} MiB)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Smoke test of the Linux packages, as installed: build, install, self-test, open the window.

    .venv/bin/python packaging/smoke_test.py [--flavour cpu] [--no-build] [--json FILE]

1. builds the bundle, its .tar.gz and .deb with the fixture pack inside
   (``packaging/build.py --with-pack tests/data/synthetic-pack``), unless ``--no-build``;
2. installs the .deb into a temporary root (``dpkg -x``) and checks its files and fields;
3. runs the installed program's ``--self-test`` offscreen (built-in pack, then ``--pack``),
   with an environment that has no Python, no project and no virtual environment in it;
4. checks that a first start imports the built-in pack, indexes the sample photos with the
   installed command line, then opens the installed app's window under Xvfb, types a caption
   and saves a screenshot; and times start → window shown (xwininfo): three times cold (the
   app's files evicted from the page cache), three times warm.
Exit 0 when every step passed. ``--json`` writes sizes and times (for benchmarks/results).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACK = ROOT / "tests" / "data" / "synthetic-pack"
APP_ID = "io.github.photosearch.Photosearch"


class SmokeError(Exception):
    pass


def step(msg: str) -> None:
    print(f"[smoke] {msg}", flush=True)


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """What a person's session would give the app: no virtual environment, no PYTHONPATH."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "XDG_RUNTIME_DIR": str(home / "run"),
    }
    (home / "run").mkdir(parents=True, exist_ok=True, mode=0o700)
    env.update(extra)
    return env


def run(cmd: list, env: dict[str, str], timeout: float = 300) -> tuple[str, float]:
    t = time.perf_counter()
    out = subprocess.run(
        [str(c) for c in cmd], env=env, capture_output=True, text=True, timeout=timeout
    )
    seconds = time.perf_counter() - t
    text = out.stdout + out.stderr
    if out.returncode != 0:
        raise SmokeError(f"{' '.join(map(str, cmd))} exited {out.returncode}:\n{text}")
    return text, seconds


def build(flavour: str, build_dir: Path) -> dict:
    report = build_dir / f"smoke-{flavour}.json"
    cmd = [sys.executable, ROOT / "packaging" / "build.py", "--flavour", flavour, "--tar"]
    cmd += ["--deb", "--with-pack", PACK, "--build-dir", build_dir, "--json", report]
    subprocess.run([str(c) for c in cmd], check=True)
    return json.loads(report.read_text())


def install(deb: Path, root: Path) -> Path:
    """``dpkg -x`` into ``root``; check the files a desktop needs and the control fields."""
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    info = subprocess.run(["dpkg-deb", "-f", str(deb)], capture_output=True, text=True).stdout
    for field in ("Package:", "Version:", "Depends:", "Installed-Size:"):
        if field not in info:
            raise SmokeError(f"control file lacks {field}")
    for rel in (
        "opt/photosearch/photosearch",
        f"usr/share/applications/{APP_ID}.desktop",
        f"usr/share/metainfo/{APP_ID}.metainfo.xml",
        f"usr/share/icons/hicolor/scalable/apps/{APP_ID}.svg",
        f"usr/share/icons/hicolor/256x256/apps/{APP_ID}.png",
    ):
        if not (root / rel).exists():
            raise SmokeError(f"the package does not install {rel}")
    link = root / "usr/bin/photosearch"
    if not link.is_symlink() or os.readlink(link) != "/opt/photosearch/photosearch":
        raise SmokeError("usr/bin/photosearch is not a link to /opt/photosearch/photosearch")
    if shutil.which("desktop-file-validate"):
        subprocess.run(
            ["desktop-file-validate", str(root / f"usr/share/applications/{APP_ID}.desktop")],
            check=True,
        )
    return root / "opt" / "photosearch" / "photosearch"


def window_shown(display: str, title: str = "photosearch") -> bool:
    out = subprocess.run(
        ["xwininfo", "-display", display, "-name", title],
        capture_output=True,
        text=True,
    )
    return "IsViewable" in out.stdout


def time_to_window(app: Path, home: Path, display: str, env: dict[str, str]) -> float:
    """Seconds from exec to the main window being mapped on ``display``; the app is closed."""
    log = home.parent / "window-start.log"
    t = time.perf_counter()
    proc = subprocess.Popen(
        [str(app), "--home", str(home), "gui"],
        env=dict(env, DISPLAY=display),
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    try:
        while time.perf_counter() - t < 60:
            if window_shown(display):
                return time.perf_counter() - t
            if proc.poll() is not None:
                raise SmokeError(
                    f"the app exited ({proc.returncode}) before showing a window:\n"
                    + log.read_text()[-3000:]
                )
            time.sleep(0.01)
        raise SmokeError("no window within 60 s")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def evict_from_page_cache(root: Path) -> None:
    """Make the next start a cold one for the app's own files (the system's stay cached): ask
    the kernel to drop their cached pages. Harmless to other processes, needs no privileges."""
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fdatasync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def start_xvfb(tmp: Path) -> tuple[subprocess.Popen, str]:
    for n in range(90, 120):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            break
    display = f":{n}"
    proc = subprocess.Popen(
        # -noreset: by default Xvfb resets when its last client leaves, and a window opened
        # during that reset fails with "could not connect to display"
        ["Xvfb", display, "-screen", "0", "1280x860x24", "-nolisten", "tcp", "-noreset"],
        stdout=subprocess.DEVNULL,
        stderr=(tmp / "xvfb.log").open("w"),
    )
    for _ in range(100):
        if Path(f"/tmp/.X11-unix/X{n}").exists():
            return proc, display
        time.sleep(0.05)
    proc.terminate()
    raise SmokeError("Xvfb did not start")


def screenshot_is_real(path: Path) -> int:
    """Distinct colours in the picture: a blank or black window has one or two."""
    from PIL import Image

    with Image.open(path) as im:
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
    return len(colours or ())


def smoke(flavour: str, build_dir: Path, do_build: bool, tmp: Path) -> dict:
    results: dict = {"flavour": flavour}
    if do_build:
        step(f"building the {flavour} bundle, .tar.gz and .deb (with the fixture pack)")
        results["build"] = build(flavour, build_dir)
    dist = build_dir / f"dist-{flavour}"
    (deb,) = dist.glob("*.deb")
    step(f"installing {deb.name} into a temporary root (dpkg -x)")
    app = install(deb, tmp / "root")
    results["installed_bytes"] = sum(
        p.lstat().st_size for p in (tmp / "root").rglob("*") if p.is_file()
    )

    user = tmp / "user"
    env = clean_env(user, QT_QPA_PLATFORM="offscreen")
    step("installed app: --self-test with its built-in pack (offscreen)")
    out, seconds = run([app, "--self-test"], env)
    print(out, end="")
    results["self_test_seconds"] = round(seconds, 2)
    provider = next((ln for ln in out.splitlines() if "encoders run on" in ln), "")
    results["provider"] = provider.rsplit("encoders run on", 1)[-1].strip()
    step("installed app: --self-test --pack tests/data/synthetic-pack")
    out, seconds = run([app, "--self-test", "--pack", PACK], env)
    results["self_test_given_pack_seconds"] = round(seconds, 2)

    step("first start imports the built-in pack; the installed CLI indexes the samples")
    home, photos = tmp / "library", tmp / "photos"
    samples = next((tmp / "root/opt/photosearch").rglob("resources/samples"))
    shutil.copytree(samples / "photos", photos)
    queries = json.loads((samples / "samples.json").read_text())["queries"]
    out, _ = run([app, "--home", home, "info", "--json"], env)
    packs = json.loads(out[out.index("{") :])["model_packs"]
    if not packs or "error" in packs[0]:
        raise SmokeError(f"the built-in pack was not installed on first start: {packs}")
    run([app, "--home", home, "folders", "add", photos], env)
    out, _ = run([app, "--home", home, "index", "--json"], env)
    if json.loads(out[out.index("{") :])["indexed"] != len(list(photos.iterdir())):
        raise SmokeError(f"the installed CLI did not index every sample: {out}")

    if not shutil.which("Xvfb"):
        step("no Xvfb: window and screenshot skipped (apt-get install xvfb libxcb-cursor0 …)")
        results["window"] = "skipped: no Xvfb"
        return results
    xvfb, display = start_xvfb(tmp)
    try:
        window_env = {k: v for k, v in env.items() if k != "QT_QPA_PLATFORM"}
        shot = build_dir / f"smoke-{flavour}-screenshot.png"
        shot.unlink(missing_ok=True)
        step(f"installed app: the window under Xvfb ({display}), search, screenshot")
        out, seconds = run(
            [app, "--home", home, "gui", "--screenshot", shot, "--query", queries[0]["text"]],
            dict(window_env, DISPLAY=display),
            timeout=180,
        )
        if not shot.exists():
            raise SmokeError(f"no screenshot was saved:\n{out}")
        colours = screenshot_is_real(shot)
        if colours < 50:
            raise SmokeError(f"the screenshot looks blank ({colours} colours): {shot}")
        results |= {"screenshot": str(shot), "screenshot_seconds": round(seconds, 2)}
        step(f"screenshot: {shot} ({colours} colours, {seconds:.1f} s including the search)")
        if shutil.which("xwininfo"):
            cold = []
            for _ in range(3):
                evict_from_page_cache(tmp / "root")
                cold.append(time_to_window(app, home, display, window_env))
            warm = [time_to_window(app, home, display, window_env) for _ in range(3)]
            results["start_to_window_seconds"] = {
                "cold": [round(s, 3) for s in cold],
                "warm": [round(s, 3) for s in warm],
            }
            step(
                f"start → window shown: cold {', '.join(f'{s:.2f}' for s in cold)} s (the app's "
                f"files evicted from the page cache), warm {', '.join(f'{s:.2f}' for s in warm)} s"
            )
        else:
            step("no xwininfo (x11-utils): start-to-window time not measured")
    finally:
        xvfb.terminate()
        xvfb.wait(10)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flavour", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--build-dir", type=Path, default=ROOT / "build")
    parser.add_argument("--no-build", action="store_true", help="test what is already built")
    parser.add_argument("--json", type=Path, help="write sizes and times here")
    args = parser.parse_args()
    if not shutil.which("dpkg-deb"):
        print("smoke: needs dpkg-deb (Debian/Ubuntu)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="photosearch-smoke-") as tmp:
        try:
            results = smoke(args.flavour, args.build_dir.resolve(), not args.no_build, Path(tmp))
        except (SmokeError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
            print(f"[smoke] FAILED: {e}", file=sys.stderr)
            return 1
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    step("passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

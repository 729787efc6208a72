#!/usr/bin/env python
"""Screenshot a report page with headless Chromium: ``screenshot_report.py <report.html> <out.png>``.

Used to check what a reader sees (figures embedded, tables laid out) without a display. Needs
``chromium`` (Debian: ``apt-get install -y chromium``) or set ``CHROMIUM=/path/to/binary``. The
browser gets a fresh profile folder and every background network feature off, so it only reads
the one file. Exit codes: 0 written, 2 bad arguments or no browser, 1 the browser failed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    env = os.environ.get("CHROMIUM")
    if env:
        return env if (os.path.isfile(env) and os.access(env, os.X_OK)) or shutil.which(env) else None
    for name in CANDIDATES:
        path = name if os.path.isabs(name) else shutil.which(name)
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def screenshot(html: str | os.PathLike, out: str | os.PathLike, *, width: int = 1280, height: int = 2400,
               timeout: float = 120.0, chromium: str | None = None) -> Path:
    """Render ``html`` (a local file) at ``width``×``height`` into the PNG ``out``; return its path."""
    html, out = Path(html).resolve(), Path(out).resolve()
    if not html.is_file():
        raise FileNotFoundError(f"no such report page: {html}")
    browser = chromium or find_chromium()
    if browser is None:
        raise FileNotFoundError("no Chromium found (apt-get install -y chromium, or set CHROMIUM=...)")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ablate-chromium-") as profile:
        tmp_png = Path(profile) / "shot.png"
        cmd = [
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={profile}/profile",
            f"--screenshot={tmp_png}", f"--window-size={width},{height}", html.as_uri(),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if not tmp_png.is_file() or tmp_png.stat().st_size == 0:
            raise RuntimeError(f"Chromium wrote no screenshot (exit {proc.returncode}): {proc.stderr[-2000:]}")
        # Write next to the target and rename, so a reader never sees half a PNG.
        staging = out.with_name(f".{out.name}.tmp")
        shutil.copyfile(tmp_png, staging)
        os.replace(staging, out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path, help="report.html to render")
    parser.add_argument("out", type=Path, help="PNG to write")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=2400)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the browser")
    args = parser.parse_args(argv)
    try:
        path = screenshot(args.html, args.out, width=args.width, height=args.height, timeout=args.timeout)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The daily report rendered by headless Chromium with the network cut off shows its figures.

The screenshot is kept as ``test-artifacts/daily_report.png`` (git-ignored). The test skips
cleanly where Chromium is not installed (``apt-get install -y chromium``).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from glutewake.analytics.report import POSTURE_COLOURS, write_daily_report
from glutewake.store.datadir import DataDir
from tests.analytics.test_report import DST_DAY, assert_self_contained, study  # noqa: F401

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = next(
    (p for p in (shutil.which(n) for n in ("chromium", "chromium-browser")) if p), None
)


def _screenshot(page: Path, png: Path, profile: Path, width: int, height: int) -> None:
    cmd = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={profile}", "--hide-scrollbars",
        # no network at all: every host resolves to nothing and any proxy use fails
        "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9",
        "--proxy-bypass-list=<-loopback>",
        f"--window-size={width},{height}", f"--screenshot={png}", page.as_uri(),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert png.exists(), result.stderr[-2000:]


def _share_of_colour(png: Path, hex_colour: str, tol: int = 12) -> float:
    from matplotlib import image

    pixels = (image.imread(png)[..., :3] * 255).astype(np.int16)
    rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)], dtype=np.int16)
    return float((np.abs(pixels - rgb).max(axis=-1) <= tol).mean())


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_chromium_renders_the_figures_offline(study: DataDir, tmp_path: Path) -> None:  # noqa: F811
    page = write_daily_report(study, "P1", DST_DAY, out=tmp_path / "daily.html")[0]
    assert_self_contained(page.read_text(encoding="utf-8"))
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "daily_report.png"
    shot.unlink(missing_ok=True)
    # a phone-sized viewport, tall enough for the whole page
    _screenshot(page, shot, tmp_path / "profile", 412, 3600)
    # the figures are embedded images: their posture colours must be on screen
    assert _share_of_colour(shot, POSTURE_COLOURS["sitting"]) > 0.005
    assert _share_of_colour(shot, POSTURE_COLOURS["standing"]) > 0.0005
    # and an empty page with the same chrome has none of them (the check can fail)
    blank = tmp_path / "blank.html"
    blank.write_text("<!doctype html><html><body><h1>nothing</h1></body></html>")
    _screenshot(blank, tmp_path / "blank.png", tmp_path / "profile2", 412, 800)
    assert _share_of_colour(tmp_path / "blank.png", POSTURE_COLOURS["sitting"]) == 0.0

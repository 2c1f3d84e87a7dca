"""The reports in headless Chromium at a 390-px phone and a 1280-px screen: readable, offline.

Measured from the DOM, for every ``<text>`` of every inline SVG figure: its rendered font size
(computed size times the figure's scale on screen) must be at least 11 CSS px, its box must not
overlap another text's box in the same figure, and it must lie inside its figure. Every other
text on the page must be at least 11 px too. The page must make no request beyond its own file.

Screenshots land in ``test-artifacts/`` (git-ignored; CI keeps the folder as artifacts):
``<report>-<width>.png``, full page. Chromium is driven through playwright-python with the
system's Chromium (``/usr/bin/chromium``, Debian's ``chromium`` package); the tests skip
cleanly where either is missing.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from colorspacious import cspace_convert

from glutewake.analytics.daily_figures import GAP_HATCH, LONG_BOUT_COLOUR, POSTURE_COLOURS
from glutewake.analytics.progress import write_progress_report
from glutewake.analytics.report import write_daily_report
from glutewake.store.datadir import DataDir
from tests.analytics.test_progress import people  # noqa: F401
from tests.analytics.test_report import DST_DAY, assert_self_contained, study  # noqa: F401

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = next(
    (p for p in (shutil.which(n) for n in ("chromium", "chromium-browser")) if p), None
)
WIDTHS = (390, 1280)
MIN_TEXT_PX = 11.0
#: text boxes are line boxes (ascent + descent), a little taller than the glyphs: two labels
#: may touch by this much without their glyphs touching
OVERLAP_TOLERANCE_PX = 1.0
FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    # no network at all: every host resolves to nothing and any proxy use fails
    "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
]

MEASURE = """() => {
  const figures = [...document.querySelectorAll('svg.fig')];
  const texts = figures.flatMap((svg, k) => {
    const box = svg.getBoundingClientRect();
    return [...svg.querySelectorAll('text')].filter(t => t.textContent.trim()).map(t => {
      const m = t.getScreenCTM();
      const r = t.getBoundingClientRect();
      return {fig: k, text: t.textContent, px: parseFloat(getComputedStyle(t).fontSize) *
              Math.hypot(m.a, m.b), x0: r.left, y0: r.top, x1: r.right, y1: r.bottom,
              inside: r.left >= box.left - 1 && r.right <= box.right + 1 &&
                      r.top >= box.top - 1 && r.bottom <= box.bottom + 1};
    });
  });
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const html = [];
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const el = node.parentElement;
    if (!node.textContent.trim() || el.closest('svg')) continue;
    html.push({text: node.textContent.trim().slice(0, 40),
               px: parseFloat(getComputedStyle(el).fontSize)});
  }
  return {figures: figures.length, texts, html,
          width: document.documentElement.scrollWidth};
}"""


def overlaps(texts: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Pairs of texts in the same figure whose boxes overlap beyond the tolerance."""
    found = []
    for i, a in enumerate(texts):
        for b in texts[i + 1:]:
            if a["fig"] != b["fig"]:
                continue
            w = min(a["x1"], b["x1"]) - max(a["x0"], b["x0"])
            h = min(a["y1"], b["y1"]) - max(a["y0"], b["y0"])
            if w > OVERLAP_TOLERANCE_PX and h > OVERLAP_TOLERANCE_PX:
                found.append((a["text"], b["text"]))
    return found


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM,
            headless=True, args=FLAGS, viewport={"width": 390, "height": 844},
        )
        yield context
        context.close()


def render(context: Any, page_file: Path, name: str) -> dict[int, dict[str, Any]]:
    """Open the page at each width; keep a screenshot; return the measures by width."""
    ARTIFACTS.mkdir(exist_ok=True)
    requests: list[str] = []
    page = context.new_page()
    page.on("request", lambda r: requests.append(r.url))
    results = {}
    try:
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            page.goto(page_file.as_uri())
            page.wait_for_load_state("load")
            shot = ARTIFACTS / f"{name}-{width}.png"
            page.screenshot(path=str(shot), full_page=True)
            results[width] = page.evaluate(MEASURE)
            assert shot.stat().st_size > 10_000
    finally:
        page.close()
    assert [r for r in requests if not r.startswith("file:")] == []
    return results


def check_readable(results: dict[int, dict[str, Any]], figures: int) -> None:
    for width, m in results.items():
        assert m["figures"] == figures, width
        assert m["width"] <= width, f"the page scrolls sideways at {width} px"
        small = [(t["text"], round(t["px"], 1)) for t in m["texts"] if t["px"] < MIN_TEXT_PX]
        assert small == [], f"figure text below {MIN_TEXT_PX} px at {width} px: {small[:5]}"
        assert len(m["texts"]) >= 10 * figures / 2
        assert overlaps(m["texts"]) == [], f"overlapping labels at {width} px"
        outside = [t["text"] for t in m["texts"] if not t["inside"]]
        assert outside == [], f"labels outside their figure at {width} px: {outside[:5]}"
        small = [(t["text"], t["px"]) for t in m["html"] if t["px"] < MIN_TEXT_PX]
        assert small == [], f"page text below {MIN_TEXT_PX} px at {width} px: {small[:5]}"


def test_daily_report_reads_on_a_phone_and_a_screen(browser: Any, study: DataDir,  # noqa: F811
                                                    tmp_path: Path) -> None:
    page = write_daily_report(study, "P1", DST_DAY, out=tmp_path / "daily.html")[0]
    assert_self_contained(page.read_text(encoding="utf-8"))
    results = render(browser, page, "daily_report")
    check_readable(results, figures=5)
    # on a phone the figure text is about the design size: 12 units at 362 px of 360 units
    phone = [t["px"] for t in results[390]["texts"]]
    assert min(phone) == pytest.approx(12.0 * 362 / 360, abs=0.3)


@pytest.mark.slow
@pytest.mark.timeout(900)  # may be the test that builds the demo
def test_demo_reports_read_on_a_phone_and_a_screen(browser: Any, demo: DataDir,
                                                   tmp_path: Path) -> None:
    # P01 on the day after the DST change: 13 long bouts, a bout across midnight, a data gap
    daily = write_daily_report(demo, "P01", dt.date(2026, 4, 9), out=tmp_path / "p01.html")[0]
    check_readable(render(browser, daily, "demo_daily_report"), figures=5)
    progress = write_progress_report(demo, "P01", out=tmp_path / "p01-progress.html")
    check_readable(render(browser, progress, "demo_progress_report"), figures=6)


def test_progress_report_reads_on_a_phone_and_a_screen(browser: Any, people: DataDir,  # noqa: F811
                                                       tmp_path: Path) -> None:
    page = write_progress_report(people, "DONE3", out=tmp_path / "progress.html")
    assert_self_contained(page.read_text(encoding="utf-8"))
    check_readable(render(browser, page, "progress_report"), figures=5)


def test_overlap_measure_finds_overlaps() -> None:
    """The overlap check can fail: two boxes sharing 5 x 5 px are reported, touching ones not."""
    a = {"fig": 0, "text": "40′", "x0": 0, "y0": 0, "x1": 20, "y1": 14}
    b = {"fig": 0, "text": "39′", "x0": 15, "y0": 9, "x1": 35, "y1": 23}
    c = {"fig": 0, "text": "70′", "x0": 20.5, "y0": 0, "x1": 40, "y1": 14}
    other = {**b, "fig": 1}
    assert overlaps([a, b]) == [("40′", "39′")]
    assert overlaps([a, c, other]) == []


def _cam02(hex_colour: str, deficiency: str | None) -> np.ndarray:
    rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)]) / 255.0
    if deficiency:
        space = {"name": "sRGB1+CVD", "cvd_type": deficiency, "severity": 100}
        rgb = np.clip(cspace_convert(rgb, space, "sRGB1"), 0, 1)
    return np.asarray(cspace_convert(rgb, "sRGB1", "CAM02-UCS"))


@pytest.mark.parametrize("deficiency", [None, "deuteranomaly", "protanomaly", "tritanomaly"])
def test_every_timeline_category_is_distinguishable(deficiency: str | None) -> None:
    """Posture colours, the long-bout bars and the gap's white differ by ΔE >= 12 (CAM02-UCS).

    Simulated with Machado et al. (2009) at full severity (colorspacious). Non-wear and a data
    gap differ in pattern as well: the gap is hatched.
    """
    colours = {**POSTURE_COLOURS, "long bout": LONG_BOUT_COLOUR, "data gap": "#FFFFFF"}
    names = list(colours)
    points = {n: _cam02(c, deficiency) for n, c in colours.items()}
    closest = min(
        (float(np.linalg.norm(points[a] - points[b])), a, b)
        for i, a in enumerate(names) for b in names[i + 1:]
    )
    assert closest[0] >= 12.0, closest
    assert GAP_HATCH and set(GAP_HATCH) == {"/"}

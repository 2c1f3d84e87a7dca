"""Report figures as inline SVG: matplotlib's SVG backend, made phone-readable and offline.

Every figure is drawn at a design width of :data:`DESIGN_WIDTH_IN` inches (360 SVG units) and
shown at the width of the page's column, so on a 390-px phone one SVG unit is about one CSS
pixel: text drawn at :data:`FONT_PT` (12) stays at 12 CSS px (at least 11 on a 360-px phone).
Text is kept as ``<text>`` (``svg.fonttype = "none"``) so it stays sharp, searchable and
measurable, and its font comes from the page (DejaVu Sans, the font matplotlib measured it
with; wider than the usual fallbacks, so a fallback never makes labels collide).

:func:`figure_svg` strips what an inline figure must not carry (the XML prologue, the metadata
block with its URLs, namespace declarations), drops element ids nothing refers to and prefixes
the rest, so several figures on one page never share an id.

The palette is Okabe and Ito's colour-blind-safe set; non-wear is grey and a data gap is a
hatched white, so the two differ in pattern as well as in colour.
"""

from __future__ import annotations

import hashlib
import html
import io
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "DESIGN_WIDTH_IN",
    "FONT_PT",
    "OKABE_ITO",
    "PRINT_STYLE",
    "SCREEN_STYLE",
    "figure_svg",
    "label_width",
    "pyplot",
    "settle_layout",
    "style",
    "svg_figure",
]

#: Okabe & Ito (2008), "Color Universal Design": distinguishable with every common form of
#: colour-vision deficiency (measured for the report's categories in the tests)
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}
#: figures are designed 5 in = 360 SVG units wide: about 1 unit per CSS px on a 390-px phone
DESIGN_WIDTH_IN = 5.0
#: the smallest text in a figure (SVG units = CSS px at the design width)
FONT_PT = 12.0

SCREEN_STYLE: dict[str, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "glutewake",  # deterministic ids (prefixed per figure below)
    "font.family": "DejaVu Sans",
    "font.size": FONT_PT,
    "axes.titlesize": FONT_PT,
    "axes.labelsize": FONT_PT,
    "xtick.labelsize": FONT_PT,
    "ytick.labelsize": FONT_PT,
    "legend.fontsize": FONT_PT,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
#: the printed A4 page (PDF/PNG): the same figures, smaller text
PRINT_STYLE: dict[str, Any] = {
    **SCREEN_STYLE,
    **{key: 8.0 for key in ("font.size", "axes.titlesize", "axes.labelsize", "xtick.labelsize",
                            "ytick.labelsize", "legend.fontsize")},
}


def pyplot() -> Any:
    """matplotlib's pyplot on the non-interactive Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@contextmanager
def style(rc: dict[str, Any] | None = None) -> Iterator[None]:
    """Draw (and save) figures with the report's style: :data:`SCREEN_STYLE` by default.

    matplotlib reads font sizes when a text is created, so figures must be both drawn and
    saved inside this context.
    """
    with pyplot().rc_context(rc or SCREEN_STYLE):
        yield


def svg_figure(
    draw: Callable[[Axes], Any], height_in: float, alt: str, width_in: float = DESIGN_WIDTH_IN
) -> str:
    """Draw one axes with ``draw`` in the screen style and return it as inline SVG.

    Parameters
    ----------
    draw : callable
        ``draw(ax)`` draws the figure's content.
    height_in, width_in : float
        Figure size in inches (72 SVG units each); keep the design width for anything shown on
        a phone.
    alt : str
        What the figure shows, in words.
    """
    with style():
        fig, ax = pyplot().subplots(figsize=(width_in, height_in), layout="constrained")
        draw(ax)
        return figure_svg(fig, alt)


def label_width(ax: Axes, text: str, fontsize: float | None = None) -> float:
    """Width of ``text`` in the x data units of ``ax`` (DejaVu Sans, as matplotlib draws it).

    Used to decide whether a label fits before drawing it, so labels never overlap. Call it
    after the axes' limits are set and the layout is done (``fig.draw_without_rendering()``).
    The width is padded by 10 %, for fonts a browser may substitute.
    """
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath

    fig = ax.get_figure(root=True)
    assert fig is not None
    fontsize = fontsize or float(pyplot().rcParams["font.size"])
    font = FontProperties(family="DejaVu Sans")
    width_pt = TextPath((0, 0), text, size=fontsize, prop=font).get_extents().width
    bbox = ax.get_window_extent()
    x0, x1 = ax.get_xlim()
    width_px = width_pt * fig.dpi / 72.0 * 1.1
    return float(width_px / bbox.width * (x1 - x0))


def settle_layout(ax: Axes) -> None:
    """Run the figure's layout now, so the axes has its final size for :func:`label_width`."""
    fig = ax.get_figure(root=True)
    assert fig is not None
    fig.draw_without_rendering()


_PROLOGUE = re.compile(r"\A.*?(?=<svg\b)", re.S)
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.S)
_SVG_OPEN = re.compile(r"<svg\b[^>]*>")
_ID = re.compile(r'\sid="([^"]+)"')
_REF = re.compile(r'url\(#([^)]+)\)|href="#([^"]+)"')
_FONT_FAMILY = re.compile(r"font-family: [^;\"]*;? ?")
_NUMBER = re.compile(r"(?<=[\s,(\"MLCQZz-])(-?\d+\.\d{3,})")


def _round(match: re.Match[str]) -> str:
    text = f"{float(match.group(1)):.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def figure_svg(fig: Figure, alt: str) -> str:
    """The figure as an inline ``<svg>`` element for an HTML page (closes the figure).

    The element scales to the width of its container (``viewBox``, no fixed size), carries
    ``role="img"`` with ``alt`` as its accessible name and a ``<title>``, refers to nothing
    outside itself, and its element ids are unique to this figure.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure (closed afterwards).
    alt : str
        What the figure shows, in words (escaped here).
    """
    buf = io.StringIO()
    with pyplot().rc_context({"svg.fonttype": "none", "svg.hashsalt": "glutewake"}):
        fig.savefig(buf, format="svg")
    pyplot().close(fig)
    svg = _METADATA.sub("", _PROLOGUE.sub("", buf.getvalue()))
    # coordinates to 1/100 unit: a tenth of the size, invisible at any zoom
    svg = _NUMBER.sub(_round, svg)
    svg = _FONT_FAMILY.sub("", svg).replace("xlink:href=", "href=")
    referenced = {a or b for a, b in _REF.findall(svg)}
    prefix = "f" + hashlib.sha1((alt + svg).encode()).hexdigest()[:8] + "-"

    def _id(match: re.Match[str]) -> str:
        name = match.group(1)
        return f' id="{prefix}{name}"' if name in referenced else ""

    svg = _ID.sub(_id, svg)
    svg = _REF.sub(
        lambda m: f"url(#{prefix}{m.group(1)})" if m.group(1) else f'href="#{prefix}{m.group(2)}"',
        svg,
    )
    view_box = re.search(r'viewBox="([^"]+)"', svg)
    assert view_box is not None
    title = html.escape(alt)
    opening = (
        f'<svg class="fig" viewBox="{view_box.group(1)}" role="img" aria-label="{title}">'
        f"<title>{title}</title>"
    )
    return _SVG_OPEN.sub(lambda _: opening, svg, count=1).strip()

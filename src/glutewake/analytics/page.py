"""The HTML page around a report: style, head, footer, colour keys, number formatting.

One self-contained page: no scripts, fonts, stylesheets or images from anywhere else. Made for
a phone first (one column, text at least 12 CSS px, figures as wide as the column) and for
printing.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import Any
from zoneinfo import ZoneInfo

from glutewake import __version__

__all__ = ["CSS", "Swatch", "legend_html", "num", "page_foot", "page_head"]

#: text colours for a judgement; the words ("met", "not met") always carry it too
GOOD = "#005a8c"
BAD = "#a63f00"

CSS = f"""
*{{box-sizing:border-box}}
body{{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222;
background:#fafafa;font-size:16px;line-height:1.4;-webkit-text-size-adjust:100%}}
main{{max-width:860px;margin:0 auto;padding:12px 14px 40px}}
h1{{font-size:1.35rem;margin:.4rem 0 .1rem}}h2{{font-size:1.08rem;margin:1.4rem 0 .4rem}}
.sub{{color:#555;font-size:.9rem}}
.tiles{{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:8px;
margin:10px 0}}
.tile{{background:#fff;border-radius:10px;padding:8px 10px;box-shadow:0 1px 2px #0002}}
.tile b{{display:block;font-size:1.6rem;line-height:1.2}}.tile small{{color:#555;font-size:.8rem}}
svg.fig{{width:100%;max-width:600px;height:auto;display:block;margin:4px 0}}
svg.fig text{{font-family:'DejaVu Sans',Verdana,'Bitstream Vera Sans',sans-serif}}
.row{{display:flex;flex-wrap:wrap;gap:8px 24px}}.row>div{{flex:1 1 300px;min-width:0}}
.scroll{{overflow-x:auto}}
table{{border-collapse:collapse;font-size:.8rem;width:100%}}
td,th{{padding:4px 6px;border-bottom:1px solid #e3e3e3;text-align:left;vertical-align:top}}
.good{{color:{GOOD};font-weight:600}}.bad{{color:{BAD};font-weight:600}}.unsure{{color:#555}}
.note{{background:#fff7e0;border-radius:8px;padding:8px 10px;margin:8px 0}}
.next{{background:#eaf3fb;border-left:4px solid #0072B2;border-radius:8px;padding:4px 12px;
margin:12px 0}}
.next h2{{margin:.4rem 0}}.next ul{{margin:.2rem 0 .5rem}}.next li{{margin:.3rem 0}}
.next li.feedback{{list-style:'✓ '}}
.cap{{color:#555;font-size:.8rem;margin:0 0 6px}}
.legend{{display:flex;flex-wrap:wrap;gap:2px 14px;list-style:none;padding:0;margin:2px 0 6px;
font-size:.8rem;color:#333}}
.sw{{display:inline-block;width:14px;height:14px;border:1px solid #0005;margin-right:5px;
vertical-align:-2px}}
.sw.line{{height:0;border:0;border-top:3px solid;width:18px;vertical-align:4px}}
ul{{padding-left:1.2rem}}
footer{{color:#666;font-size:.75rem;margin-top:2rem}}
@media print{{body{{background:#fff}}.tile{{box-shadow:none;border:1px solid #ddd}}}}
"""


def page_head(title: str) -> list[str]:
    """The start of a self-contained page (no external resources)."""
    return [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{html.escape(title)}</title>",
        f"<style>{CSS}</style></head><body><main>",
    ]


def page_foot(tz: str) -> list[str]:
    """The footer and the end of the page."""
    now = dt.datetime.now(ZoneInfo(tz))
    return [
        f"<footer>glutewake {html.escape(__version__)} · generated {now:%Y-%m-%d %H:%M %Z} · "
        "an activity and activation record, not a diagnosis</footer>",
        "</main></body></html>",
    ]


def num(value: Any, fmt: str = "{:.0f}", missing: str = "–") -> str:
    """Format a number, or ``missing`` for None/NaN."""
    if value is None or (isinstance(value, float) and value != value):
        return missing
    return fmt.format(value)


#: (label, CSS background of the swatch, "box" or "line")
Swatch = tuple[str, str, str]


def legend_html(items: list[Swatch]) -> str:
    """A colour key as an HTML list, so it wraps on a phone instead of shrinking in a figure.

    ``background`` is a CSS colour or gradient (a hatch is a repeating gradient), for a ``line``
    the colour and style of its top border (``"#000 dashed"``).
    """
    out = ["<ul class='legend'>"]
    for label, background, kind in items:
        css = f"border-top:3px {background}" if kind == "line" else f"background:{background}"
        cls = "sw line" if kind == "line" else "sw"
        out.append(f"<li><span class='{cls}' style='{css}'></span>{html.escape(label)}</li>")
    out.append("</ul>")
    return "".join(out)

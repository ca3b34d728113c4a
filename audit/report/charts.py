"""Charts as inline SVG strings: no library, no network, every label escaped.

Colours are the Okabe-Ito palette, which stays distinguishable under the common forms of
colour blindness. Every chart carries a <title> (its alt text) and labelled axes.
"""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup, escape

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
INK = "#222"
GRID = "#ddd"


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    low: float | None = None
    high: float | None = None


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def _svg(width: int, height: int, title: str, body: list[str]) -> Markup:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" class="chart"><title>{escape(title)}</title>'
        f'<style>text{{font:12px system-ui,sans-serif;fill:{INK}}}</style>'
    )
    return Markup(head + "".join(body) + "</svg>")


def interval_bars(bars: list[Bar], *, title: str, axis: str, domain: tuple[float, float] = (0.0, 1.0)) -> Markup:
    """Horizontal bars with confidence-interval whiskers, one row per bar."""
    left, right, row = 170, 40, 26
    width, height = 640, 40 + row * len(bars) + 30
    span = domain[1] - domain[0] or 1.0

    def x(value: float) -> float:
        clipped = min(max(value, domain[0]), domain[1])
        return left + (clipped - domain[0]) / span * (width - left - right)

    body = _x_axis(x, domain, top=20, bottom=height - 30, label=axis, width=width)
    for index, bar in enumerate(bars):
        y = 24 + index * row
        body.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">{escape(bar.label)}</text>')
        body.append(
            f'<rect x="{x(domain[0]):.1f}" y="{y + 3}" width="{x(bar.value) - x(domain[0]):.1f}" '
            f'height="{row - 10}" fill="{PALETTE[0]}"/>'
        )
        if bar.low is not None and bar.high is not None:
            body.append(_whisker(x(bar.low), x(bar.high), y + row / 2 - 2))
        end = max(x(bar.value), x(bar.high) if bar.high is not None else 0.0)
        body.append(f'<text x="{min(end + 5, width - right + 2):.1f}" y="{y + 14}">{_fmt(bar.value)}</text>')
    return _svg(width, height, title, body)


def _whisker(x0: float, x1: float, y: float) -> str:
    return (
        f'<g stroke="{INK}" stroke-width="1.5"><line x1="{x0:.1f}" x2="{x1:.1f}" y1="{y:.1f}" y2="{y:.1f}"/>'
        f'<line x1="{x0:.1f}" x2="{x0:.1f}" y1="{y - 5:.1f}" y2="{y + 5:.1f}"/>'
        f'<line x1="{x1:.1f}" x2="{x1:.1f}" y1="{y - 5:.1f}" y2="{y + 5:.1f}"/></g>'
    )


def _x_axis(x, domain: tuple[float, float], *, top: float, bottom: float, label: str, width: int) -> list[str]:
    body = []
    for step in range(5):
        value = domain[0] + (domain[1] - domain[0]) * step / 4
        body.append(f'<line x1="{x(value):.1f}" x2="{x(value):.1f}" y1="{top}" y2="{bottom}" stroke="{GRID}"/>')
        body.append(f'<text x="{x(value):.1f}" y="{bottom + 14}" text-anchor="middle">{_fmt(value)}</text>')
    body.append(f'<text x="{width / 2:.0f}" y="{bottom + 28}" text-anchor="middle">{escape(label)}</text>')
    return body


def _short_label(text: str, limit: int) -> str:
    # long class names would overlap their neighbours; the full name stays in the <title>
    return text if len(text) <= limit else text[: limit - 1] + "…"


LABEL_CHARS = 40  # class names longer than this are shortened (the full name stays in the <title>)


def confusion_matrix(classes: list[str], counts: list[list[int]], *, title: str) -> Markup:
    """A heatmap of counts: rows are true classes, columns predicted ones."""
    size = max(22, min(56, 420 // max(len(classes), 1)))
    # room for every label in full (up to LABEL_CHARS), at about 7 px a character
    longest = min(max((len(c) for c in classes), default=1), LABEL_CHARS)
    rotate = 7 * longest > size - 4  # column labels that do not fit their cell are set at 45 degrees
    left = 34 + 7 * longest
    top = 30 + (int(5 * longest) + 8 if rotate else 22)
    width = left + size * len(classes) + (int(5 * longest) if rotate else 0) + 20
    height = top + size * len(classes) + 20
    peak = max((max(row) for row in counts), default=1) or 1
    body = [
        f'<text x="{left + size * len(classes) / 2:.0f}" y="16" text-anchor="middle">predicted class</text>',
        f'<text x="14" y="{top + size * len(classes) / 2:.0f}" transform="rotate(-90 14 {top + size * len(classes) / 2:.0f})" '
        f'text-anchor="middle">true class</text>',
    ]
    for j, name in enumerate(classes):
        shown, x = escape(_short_label(name, LABEL_CHARS)), left + j * size + size / 2
        placed = (f'x="{x:.0f}" y="{top - 8}" transform="rotate(-45 {x:.0f} {top - 8})" text-anchor="start"' if rotate
                  else f'x="{x:.0f}" y="{top - 8}" text-anchor="middle"')
        body.append(f'<text {placed}><title>{escape(name)}</title>{shown}</text>')
        body.append(f'<text x="{left - 6}" y="{top + j * size + size / 2 + 4:.0f}" text-anchor="end"><title>{escape(name)}</title>{shown}</text>')
    for i, row in enumerate(counts):
        for j, count in enumerate(row):
            shade = count / peak
            fill = f"rgba(0,114,178,{0.08 + 0.92 * shade:.3f})"
            text_colour = "#fff" if shade > 0.55 else INK
            body.append(
                f'<rect x="{left + j * size}" y="{top + i * size}" width="{size - 1}" height="{size - 1}" fill="{fill}"/>'
                f'<text x="{left + j * size + size / 2:.0f}" y="{top + i * size + size / 2 + 4:.0f}" '
                f'text-anchor="middle" style="fill:{text_colour}">{count}</text>'
            )
    return _svg(width, height, title, body)


def reliability_diagram(points: list[tuple[float, float, int]], *, title: str, x_label: str) -> Markup:
    """Observed frequency against mean predicted probability per bin; the diagonal is perfect."""
    left, bottom, size = 60, 40, 300
    width, height = left + size + 30, size + bottom + 20
    peak = max((n for _, _, n in points), default=1) or 1

    def px(value: float) -> float:
        return left + value * size

    def py(value: float) -> float:
        return 10 + (1 - value) * size

    body = [f'<rect x="{left}" y="10" width="{size}" height="{size}" fill="none" stroke="{GRID}"/>']
    for step in range(5):
        value = step / 4
        body.append(f'<text x="{px(value):.0f}" y="{size + 26}" text-anchor="middle">{_fmt(value)}</text>')
        body.append(f'<text x="{left - 6}" y="{py(value) + 4:.0f}" text-anchor="end">{_fmt(value)}</text>')
    body.append(f'<line x1="{px(0)}" y1="{py(0)}" x2="{px(1)}" y2="{py(1)}" stroke="#999" stroke-dasharray="4 3"/>')
    path = " ".join(f"{px(p):.1f},{py(o):.1f}" for p, o, _ in points)
    body.append(f'<polyline points="{path}" fill="none" stroke="{PALETTE[3]}" stroke-width="2"/>')
    for predicted, observed, n in points:
        radius = 3 + 6 * (n / peak) ** 0.5
        body.append(f'<circle cx="{px(predicted):.1f}" cy="{py(observed):.1f}" r="{radius:.1f}" fill="{PALETTE[3]}" fill-opacity="0.7"/>')
    body.append(f'<text x="{left + size / 2:.0f}" y="{size + 42}" text-anchor="middle">{escape(x_label)}</text>')
    body.append(
        f'<text x="14" y="{10 + size / 2:.0f}" transform="rotate(-90 14 {10 + size / 2:.0f})" '
        f'text-anchor="middle">observed frequency</text>'
    )
    return _svg(width, height + 20, title, body)


@dataclass(frozen=True)
class StatusBar:
    """A bar that may have no value (``status="undefined"``) or rest on a small group
    (``status="insufficient"``): drawn pale, or as the word "undefined", never as a zero."""

    label: str
    value: float | None
    low: float | None = None
    high: float | None = None
    status: str | None = None


def ratio_bars(
    bars: list[StatusBar], *, title: str, axis: str, line: float, line_label: str,
    domain: tuple[float, float] = (0.0, 1.0),
) -> Markup:
    """Horizontal bars with interval whiskers and a marked reference line (a rule of thumb).

    Insufficient bars are pale and say so; undefined ones are written out, so a missing value
    never reads as a zero.
    """
    left, right, row, top = 190, 90, 26, 34
    width, height = 660, top + row * len(bars) + 34
    span = domain[1] - domain[0] or 1.0

    def x(value: float) -> float:
        clipped = min(max(value, domain[0]), domain[1])
        return left + (clipped - domain[0]) / span * (width - left - right)

    body = _x_axis(x, domain, top=top - 4, bottom=height - 34, label=axis, width=width)
    body.append(
        f'<line x1="{x(line):.1f}" x2="{x(line):.1f}" y1="{top - 10}" y2="{height - 34}" '
        f'stroke="{PALETTE[3]}" stroke-width="2" stroke-dasharray="5 3"/>'
        f'<text x="{x(line):.1f}" y="{top - 14}" text-anchor="middle" style="fill:{PALETTE[3]}">{escape(line_label)}</text>'
    )
    for index, bar in enumerate(bars):
        body += _status_bar(bar, x, top + index * row, row, left, width - right)
    return _svg(width, height, title, body)


def _status_bar(bar: StatusBar, x, y: float, row: int, left: int, end_of_plot: float) -> list[str]:
    out = [f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">{escape(bar.label)}</text>']
    if bar.value is None:
        out.append(f'<text x="{left + 4}" y="{y + 14}" font-style="italic">undefined</text>')
        return out
    pale = bar.status == "insufficient"
    out.append(
        f'<rect x="{left}" y="{y + 3}" width="{x(bar.value) - left:.1f}" height="{row - 10}" fill="{PALETTE[0]}"'
        + (f' fill-opacity="0.3" stroke="{PALETTE[0]}" stroke-dasharray="3 2"/>' if pale else "/>")
    )
    if bar.low is not None and bar.high is not None:
        out.append(_whisker(x(bar.low), x(bar.high), y + row / 2 - 2))
    end = max(x(bar.value), x(bar.high) if bar.high is not None else 0.0)
    text = _fmt(bar.value) + (" insufficient" if pale else "")
    out.append(f'<text x="{min(end + 5, end_of_plot + 4):.1f}" y="{y + 14}">{escape(text)}</text>')
    return out

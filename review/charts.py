"""Charts drawn on the server as SVG. Pure: numbers in, SVG text out.

Server-side SVG keeps the Content-Security-Policy strict (no chart library, no inline script or style:
colours are SVG presentation attributes) and the page readable without JavaScript. Every label is
escaped; each chart has a <title> and a text alternative for screen readers.
"""

from __future__ import annotations

from html import escape

PALETTE = ("#175cd3", "#dc6803", "#079455", "#b42318", "#6941c6", "#0e9384", "#c11574", "#667085")


def _e(s: object) -> str:
    return escape(str(s), quote=True)


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1
    for m in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10_000, 20_000, 50_000, 100_000,
              200_000, 500_000, 1_000_000):
        if v <= m:
            return m
    return v


def stacked_bars(labels: list[str], series: dict[str, list[int]], title: str, width: int = 640, height: int = 220,
                 empty: str = "no data") -> str:
    """Vertical bars, one per label (e.g. a day), stacked by series (e.g. marketplace), with a legend."""
    names = list(series)
    totals = [sum(series[n][i] for n in names) for i in range(len(labels))]
    top = _nice_max(max(totals, default=0))
    left, right, head, foot = 40, 8, 24, 34
    w, h = width - left - right, height - head - foot
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="{_e(title)}"><title>{_e(title)}</title>']
    if not labels or not any(totals):
        out.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" fill="#5b6475">{_e(empty)}</text></svg>')
        return "".join(out)
    for k in range(5):  # grid and axis labels
        y = head + h - h * k / 4
        out.append(f'<line x1="{left}" x2="{left + w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e4e7ec"/>')
        out.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="10" fill="#5b6475">{int(top * k / 4)}</text>')
    bw = w / len(labels)
    for i, lab in enumerate(labels):
        x = left + i * bw
        y = head + h
        tip = [f"{lab}: {totals[i]}"]
        for j, n in enumerate(names):
            v = series[n][i]
            if not v:
                continue
            bh = h * v / top
            y -= bh
            tip.append(f"{n} {v}")
            out.append(f'<rect x="{x + bw * 0.12:.1f}" y="{y:.1f}" width="{bw * 0.76:.1f}" height="{bh:.1f}" '
                       f'fill="{PALETTE[j % len(PALETTE)]}"><title>{_e(lab)} · {_e(n)}: {v}</title></rect>')
        step = max(1, len(labels) // 8)
        if i % step == 0 or i == len(labels) - 1:
            out.append(f'<text x="{x + bw / 2:.1f}" y="{head + h + 14}" text-anchor="middle" font-size="10" '
                       f'fill="#5b6475">{_e(lab)}</text>')
    lx = left
    for j, n in enumerate(names):
        out.append(f'<rect x="{lx}" y="{height - 12}" width="10" height="10" fill="{PALETTE[j % len(PALETTE)]}"/>'
                   f'<text x="{lx + 14}" y="{height - 3}" font-size="11" fill="#1d2330">{_e(n)}</text>')
        lx += 24 + 7 * len(str(n))
    out.append("</svg>")
    return "".join(out)


def lines(labels: list[str], series: dict[str, list[int]], title: str, width: int = 640, height: int = 220,
          empty: str = "no data") -> str:
    """One line per series (e.g. a standard) over the labels (e.g. days), each point with its value in
    a <title>, and a legend. The trend of several series at once, where stacked bars would hide it."""
    names = [n for n in series if any(series[n])]
    top = _nice_max(max((v for n in names for v in series[n]), default=0))
    left, right, head, foot = 40, 16, 24, 44 + 16 * ((len(names) - 1) // 4)
    w, h = width - left - right, height - head - foot
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart lines" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="{_e(title)}"><title>{_e(title)}</title>']
    if not labels or not names:
        out.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" fill="#5b6475">{_e(empty)}</text></svg>')
        return "".join(out)
    for k in range(5):
        y = head + h - h * k / 4
        out.append(f'<line x1="{left}" x2="{left + w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e4e7ec"/>')
        out.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="10" fill="#5b6475">{int(top * k / 4)}</text>')
    step_x = w / max(1, len(labels) - 1) if len(labels) > 1 else 0
    xs = [left + (i * step_x if len(labels) > 1 else w / 2) for i in range(len(labels))]
    step = max(1, len(labels) // 8)
    for i, lab in enumerate(labels):
        last = i == len(labels) - 1
        if (i % step == 0 and len(labels) - 1 - i >= step / 2) or last:  # the last label, and none crowding it
            anchor = "end" if last and len(labels) > 1 else "middle"
            out.append(f'<text x="{xs[i]:.1f}" y="{head + h + 14}" text-anchor="{anchor}" font-size="10" '
                       f'fill="#5b6475">{_e(lab)}</text>')
    for j, n in enumerate(names):
        col = PALETTE[j % len(PALETTE)]
        ys = [head + h - h * v / top for v in series[n]]
        path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(zip(xs, ys, strict=False)))
        out.append(f'<g class="series" data-series="{_e(n)}"><path d="{path}" fill="none" stroke="{col}" stroke-width="2"/>')
        for i, (x, y) in enumerate(zip(xs, ys, strict=False)):
            v = series[n][i]
            if v:
                out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{col}"><title>{_e(labels[i])} · {_e(n)}: {v}'
                           f'</title></circle>')
        out.append("</g>")
    lx, ly = left, head + h + 32
    for j, n in enumerate(names):
        if j and j % 4 == 0:
            lx, ly = left, ly + 16
        short = n if len(n) <= 24 else n[:23] + "…"
        out.append(f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" fill="{PALETTE[j % len(PALETTE)]}"/>'
                   f'<text x="{lx + 14}" y="{ly}" font-size="11" fill="#1d2330"><title>{_e(n)}</title>{_e(short)}</text>')
        lx += 24 + 7 * len(short)
    out.append("</svg>")
    return "".join(out)


def hbars(items: list[tuple[str, int]], title: str, width: int = 640, bar: int = 18, empty: str = "no data",
          color: str = "#175cd3", label_width: int = 200) -> str:
    """Horizontal bars, one per (label, value), with the value written at the end of the bar."""
    if not items:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} 40" role="img" '
                f'aria-label="{_e(title)}"><title>{_e(title)}</title><text x="{width / 2}" y="24" text-anchor="middle" '
                f'fill="#5b6475">{_e(empty)}</text></svg>')
    height = len(items) * (bar + 6) + 8
    top = max(v for _, v in items) or 1
    w = width - label_width - 60
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="{_e(title)}"><title>{_e(title)}</title>']
    for i, (lab, v) in enumerate(items):
        y = 4 + i * (bar + 6)
        short = lab if len(lab) <= 34 else lab[:33] + "…"
        out.append(f'<text x="{label_width - 6}" y="{y + bar * 0.72:.1f}" text-anchor="end" font-size="12" '
                   f'fill="#1d2330"><title>{_e(lab)}</title>{_e(short)}</text>')
        bw = max(1.0, w * v / top) if v else 0
        out.append(f'<rect x="{label_width}" y="{y}" width="{bw:.1f}" height="{bar}" fill="{color}" rx="2">'
                   f'<title>{_e(lab)}: {v}</title></rect>')
        out.append(f'<text x="{label_width + bw + 4:.1f}" y="{y + bar * 0.72:.1f}" font-size="12" fill="#1d2330">{v}</text>')
    out.append("</svg>")
    return "".join(out)


def sparkline(points: list[tuple[str, float]], title: str, width: int = 320, height: int = 60) -> str:
    """A line of values over time (e.g. a listing's price), labelled at the first and last point."""
    if len(points) < 2:
        return ""
    vals = [v for _, v in points]
    lo, hi = min(vals), max(vals)
    span = (hi - lo) or 1
    pad = 6
    xs = [pad + (width - 2 * pad) * i / (len(points) - 1) for i in range(len(points))]
    ys = [height - 16 - (height - 26) * (v - lo) / span for v in vals]
    path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(zip(xs, ys, strict=True)))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart spark" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="{_e(title)}"><title>{_e(title)}</title>',
           f'<path d="{path}" fill="none" stroke="#175cd3" stroke-width="2"/>']
    for (lab, v), x, y in zip(points, xs, ys, strict=True):
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#175cd3"><title>{_e(lab)}: {_e(v)}</title></circle>')
    out.append(f'<text x="{pad}" y="{height - 3}" font-size="10" fill="#5b6475">{_e(points[0][0])} · {_e(points[0][1])}</text>')
    out.append(f'<text x="{width - pad}" y="{height - 3}" text-anchor="end" font-size="10" fill="#5b6475">'
               f'{_e(points[-1][0])} · {_e(points[-1][1])}</text></svg>')
    return "".join(out)

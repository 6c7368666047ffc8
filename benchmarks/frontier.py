"""The quality-vs-latency frontier of one evaluation report: its points and a standalone SVG of them.

Each pipeline with a quality figure and a p50 latency is a point; the Pareto front
(:func:`distill.ui.figures.pareto_front`: no other pipeline as fast and as good) is highlighted. The SVG is written by
hand, log latency axis, so that a benchmark can draw it beside its report with no plotting library beyond what the
project installs; the UI draws the same points with plotly (:func:`distill.ui.figures.quality_latency_scatter`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from html import escape
from typing import Any

from distill.ui.figures import METRIC_LABELS, pareto_front

WIDTH, HEIGHT = 760, 480
LEFT, RIGHT, TOP, BOTTOM = 70, 30, 40, 60
FRONT_COLOR, OTHER_COLOR = "#E45756", "#4C78A8"


def frontier_points(report: Mapping[str, Any], metric: str = "ndcg@10") -> list[dict[str, Any]]:
    """One point per pipeline that reports ``metric`` and a p50: name, p50 (ms), quality, speed-up against and share
    of the report's first pipeline, and whether it lies on the Pareto front. Pipelines without both are left out."""
    pipelines = report["pipelines"]
    points = []
    for name, entry in pipelines.items():
        quality = (entry.get("quality") or {}).get(metric)
        p50 = ((entry.get("latency") or {}).get("query") or {}).get("p50_ms")
        if quality is not None and p50 is not None and p50 > 0:
            points.append({"pipeline": name, "p50_ms": float(p50), "quality": float(quality)})
    if not points:
        return []
    reference = next(iter(pipelines))
    base = next((p for p in points if p["pipeline"] == reference), None)
    front = pareto_front([p["p50_ms"] for p in points], [p["quality"] for p in points])
    for point, on_front in zip(points, front):
        point["on_front"] = on_front
        if base is not None:
            point["speed_up"] = base["p50_ms"] / point["p50_ms"]
            point["share"] = point["quality"] / base["quality"] if base["quality"] else None
    return points


def _ticks(low: float, high: float) -> list[float]:
    """1-2-5 ticks per decade between ``low`` and ``high`` (ms)."""
    ticks = []
    for exponent in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1):
        for m in (1, 2, 5):
            value = m * 10.0**exponent
            if low <= value <= high:
                ticks.append(value)
    return ticks


def _label(value: float) -> str:
    return f"{value:g}"


def frontier_svg(report: Mapping[str, Any], metric: str = "ndcg@10", title: str | None = None) -> str:
    """The report's frontier as an SVG document: quality (y) against p50 latency (x, log scale), front in red and
    joined by a step line, every point labelled with its pipeline's name."""
    points = frontier_points(report, metric)
    label = METRIC_LABELS.get(metric, metric)
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        'font-family="sans-serif" font-size="12">\n<rect width="100%" height="100%" fill="white"/>\n'
    )
    title = title or f"{label} against p50 latency per query (Pareto front in red)"
    parts = [head, f'<text x="{WIDTH / 2}" y="22" text-anchor="middle" font-size="15">{escape(title)}</text>\n']
    if not points:
        parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">no pipeline reports {label}')
        parts.append(" and a latency</text>\n</svg>\n")
        return "".join(parts)
    lat = [p["p50_ms"] for p in points]
    qual = [p["quality"] for p in points]
    x_low, x_high = 10 ** math.floor(math.log10(min(lat))), 10 ** math.ceil(math.log10(max(lat)))
    pad = max((max(qual) - min(qual)) * 0.08, 0.01)
    y_low, y_high = min(qual) - pad, max(qual) + pad
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(ms: float) -> float:
        span = math.log10(x_high) - math.log10(x_low)
        return LEFT + plot_w * (math.log10(ms) - math.log10(x_low)) / (span or 1.0)

    def y(q: float) -> float:
        return TOP + plot_h * (1 - (q - y_low) / ((y_high - y_low) or 1.0))

    parts.append(f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#888"/>\n')
    for tick in _ticks(x_low, x_high):
        parts.append(f'<line x1="{x(tick):.1f}" y1="{TOP}" x2="{x(tick):.1f}" y2="{TOP + plot_h}" stroke="#eee"/>\n')
        parts.append(f'<text x="{x(tick):.1f}" y="{TOP + plot_h + 16}" text-anchor="middle">{_label(tick)}</text>\n')
    for i in range(6):
        q = y_low + (y_high - y_low) * i / 5
        parts.append(f'<line x1="{LEFT}" y1="{y(q):.1f}" x2="{LEFT + plot_w}" y2="{y(q):.1f}" stroke="#eee"/>\n')
        parts.append(f'<text x="{LEFT - 6}" y="{y(q) + 4:.1f}" text-anchor="end">{q:.3f}</text>\n')
    parts.append(
        f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 18}" text-anchor="middle">p50 latency per query (ms, log scale),'
        " lower is better</text>\n"
        f'<text x="16" y="{TOP + plot_h / 2}" text-anchor="middle" transform="rotate(-90 16 {TOP + plot_h / 2})">'
        f"{escape(label)}, higher is better</text>\n"
    )
    front = sorted((p for p in points if p["on_front"]), key=lambda p: p["p50_ms"])
    steps = []
    for a, b in zip(front, front[1:]):  # a step line: quality holds until the next, slower and better, point
        steps.append(f"{x(a['p50_ms']):.1f},{y(a['quality']):.1f} {x(b['p50_ms']):.1f},{y(a['quality']):.1f}")
    path = " ".join(steps) + (f" {x(front[-1]['p50_ms']):.1f},{y(front[-1]['quality']):.1f}" if front else "")
    if len(front) > 1:
        parts.append(f'<polyline points="{path.strip()}" fill="none" stroke="{FRONT_COLOR}" stroke-dasharray="5,4"/>\n')
    for p in points:
        color = FRONT_COLOR if p["on_front"] else OTHER_COLOR
        cx, cy = x(p["p50_ms"]), y(p["quality"])
        ring = ' stroke="#222" stroke-width="2"' if p["on_front"] else ""
        parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="6" fill="{color}"{ring}>')
        parts.append(f"<title>{escape(p['pipeline'])}: {p['quality']:.4f} at {p['p50_ms']:.2f} ms</title></circle>\n")
        parts.append(f'<text x="{cx + 8:.1f}" y="{cy - 8:.1f}">{escape(p["pipeline"])}</text>\n')
    parts.append("</svg>\n")
    return "".join(parts)

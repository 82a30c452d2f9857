"""The HTML report's daily chart: questions a day as bars, the answer rate as a line. Only the
geometry; bot/templates/report.html.j2 draws it as inline SVG, with the words of
bot/templates/<language>/_chart.html.j2.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from bot.reports.stats import DayFigures


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    figures: DayFigures  # the day's, for its tooltip


@dataclass(frozen=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True)
class DayTick:
    """A day under the chart; its weekday too when the days are few enough to leave room."""

    at: float
    day: dt.date
    weekday: bool


@dataclass(frozen=True)
class Chart:
    """The daily chart's geometry; the template draws it as SVG."""

    width: int
    height: int
    left: float
    right: float
    top: float
    bottom: float
    bars: list[Bar]
    # Runs of consecutive days with an answer rate: polyline points, and the single points.
    rate_lines: list[str]
    rate_points: list[tuple[float, float]]
    count_ticks: list[Tick]
    rate_ticks: list[Tick]
    day_ticks: list[DayTick]


def _nice_scale(largest: int) -> tuple[int, int]:
    """A top for the count axis and its step: 1, 2 or 5 times a power of ten, about 5 ticks."""
    if largest <= 0:
        return 1, 1
    raw = largest / 5
    power = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return math.ceil(largest / step) * step, step


def daily_chart(days: list[DayFigures], width: int = 960, height: int = 320) -> Chart:
    left, right, top, bottom = 56.0, width - 56.0, 48.0, height - 44.0
    plot_w, plot_h = right - left, bottom - top
    slot = plot_w / max(len(days), 1)
    bar_w = min(slot * 0.7, 48.0)
    top_count, step = _nice_scale(max((d.questions for d in days), default=0))

    def x_of(i: int) -> float:
        return left + slot * (i + 0.5)

    bars, runs, run = [], [], []
    for i, day in enumerate(days):
        h = plot_h * day.questions / top_count
        rate = day.answer_rate
        bars.append(Bar(round(x_of(i) - bar_w / 2, 2), round(bottom - h, 2), round(bar_w, 2),
                        round(h, 2), day))
        if rate is None:
            if run:
                runs.append(run)
            run = []
        else:
            run.append((round(x_of(i), 2), round(bottom - plot_h * rate, 2)))
    if run:
        runs.append(run)
    lines = [" ".join(f"{x},{y}" for x, y in r) for r in runs if len(r) > 1]
    points = [p for r in runs for p in r] if len(days) <= 31 else [r[0] for r in runs
                                                                   if len(r) == 1]
    count_ticks = [Tick(round(bottom - plot_h * v / top_count, 2), str(v))
                   for v in range(0, top_count + 1, step)]
    rate_ticks = [Tick(round(bottom - plot_h * v / 100, 2), f"{v}%") for v in (0, 25, 50, 75, 100)]
    every = max(1, math.ceil(len(days) / 12))
    day_ticks = [DayTick(round(x_of(i), 2), d.day, weekday=len(days) <= 14)
                 for i, d in enumerate(days) if i % every == 0]
    return Chart(width, height, left, right, top, bottom, bars, lines, points, count_ticks,
                 rate_ticks, day_ticks)

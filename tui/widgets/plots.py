"""textual-plotext plots whose figure is built in a thread worker, never on the UI thread.

Plotext builds a 70x15 figure of a few thousand points in 10-100 ms: done in `render()` (as
`PlotextPlot` does), every data change of a sweep running at full speed would freeze the app
for that long. Here `set_data` only stores the data; a worker builds the figure for the
widget's current size and theme and hands back the text, which `render()` returns. One build
runs at a time per plot; data or a size that changed meanwhile is built right after (latest
wins), and equal data builds nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual import events, work
from textual.app import RenderResult
from textual.geometry import Size
from textual_plotext import Plot, PlotextPlot

from tui.gcpause import gc_paused
from tui.viewmodel.sweep_render import BestSeries, CurveSeries, number

Draw = Callable[[Plot, Any, int], None]  # (figure, data, width in cells)


class BackgroundPlot(PlotextPlot):
    DEFAULT_CSS = "BackgroundPlot { width: 1fr; height: 1fr; }"

    def __init__(self, draw: Draw, *, placeholder: str = "", id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._draw = draw
        self._placeholder = placeholder
        self._data: Any = None
        self._version = 0
        self._text: Text | None = None
        self._shown: tuple[int, Size, str] | None = None  # what `_text` was built for
        self._building = False
        self._job: tuple[int, Size, str, Any] | None = None
        self.builds = 0  # figures built (tests and the benchmark read it)
        self.built_version = 0

    @property
    def version(self) -> int:
        return self._version

    def set_data(self, data: Any) -> bool:
        """New data to plot; False (nothing rebuilt) when it equals what is plotted."""
        if self._version and data == self._data:
            return False
        self._data = data
        self._version += 1
        self._schedule()
        return True

    @property
    def current(self) -> bool:
        """The text shown was built from the latest data."""
        return self._shown is not None and self._shown[0] == self._version

    def on_resize(self, _event: events.Resize) -> None:
        self._schedule()

    def _register_theme(self, app_theme_name: str) -> None:
        super()._register_theme(app_theme_name)
        if self.is_mounted:
            self._schedule()

    def _schedule(self) -> None:
        if self._building or not self._version or not self.is_mounted:
            return
        size = self.size
        if size.width < 8 or size.height < 4:
            return
        theme = self._get_plotext_theme_name(self.app.theme)
        if self._shown == (self._version, size, theme):
            return
        self._building = True
        # handed over as an attribute, not as arguments: the worker's description would
        # repr() them (thousands of trials)
        self._job = (self._version, size, theme, self._data)
        self._build()

    @work(thread=True, exit_on_error=False, group="plot-build")
    def _build(self) -> None:
        job = self._job
        assert job is not None  # set by `_schedule` before it starts the build
        version, size, theme, data = job
        plt = self._plot  # used by builds only, one at a time
        try:
            # plotext's canvas is lists of lists, garbage once built (see tui/gcpause.py)
            with gc_paused():
                plt.clear_figure()
                plt.plotsize(size.width, size.height)
                plt._set_size(size.width, size.height)
                plt.theme(theme)
                self._draw(plt, data, size.width)
                text = Text.from_ansi(plt.build())
        except Exception as exc:  # noqa: BLE001 - a plot is never worth a crash
            text = Text(f"cannot plot: {type(exc).__name__}: {exc}", style="red")
        with contextlib.suppress(RuntimeError):  # the app is closing
            self.app.call_from_thread(self._built, version, size, theme, text)

    def _built(self, version: int, size: Size, theme: str, text: Text) -> None:
        self._building = False
        if not self.is_mounted:
            return
        self._text = text
        self._shown = (version, size, theme)
        self.builds += 1
        self.built_version = version
        self.refresh()
        self._schedule()  # newer data, or a new size, arrived during the build

    def render(self) -> RenderResult:
        if self._text is None:
            return Text(self._placeholder, style="dim")
        return self._text


# --- what the sweep detail plots -------------------------------------------------------------

def _title(plt: Plot, text: str, width: int) -> None:
    """Plotext drops a title wider than the plot: clip it instead."""
    limit = max(8, width - 4)
    plt.title(text if len(text) <= limit else text[: limit - 1] + "…")


def draw_best(plt: Plot, data: BestSeries, width: int = 80) -> None:
    """Every complete trial's value (dots) and the best so far (line) over trial number."""
    arrow = "↑" if data.maximize else "↓"
    metric = data.metric or "value"
    if not data.xs:
        _title(plt, f"best {metric} so far: no complete trial yet", width)
        return
    xs, best = list(data.xs), list(data.best)
    plt.scatter(xs, list(data.values), marker="dot", color="gray")
    plt.plot(xs, best, marker="braille", color="green")
    _title(plt, f"best {metric} so far {arrow} {number(best[-1])} · {len(xs)} complete", width)
    plt.xlabel("trial")


def draw_curves(plt: Plot, data: CurveSeries, width: int = 80) -> None:
    """Intermediate values per epoch: the other trials as a cloud, running trials in cyan,
    the selected trial in orange (pruned trials stop where the pruner stopped them)."""
    metric = data.metric or "value"
    if data.cloud_x:
        plt.scatter(list(data.cloud_x), list(data.cloud_y), marker="dot", color="gray")
    for _n, steps in data.running:
        plt.plot([s for s, _ in steps], [v for _, v in steps], marker="braille", color="cyan")
    if data.selected_steps:
        plt.plot([s for s, _ in data.selected_steps], [v for _, v in data.selected_steps],
                 marker="braille", color="orange")
    title = f"{metric} per epoch"
    if data.selected is not None:
        title += f" · #{data.selected} {data.selected_state}" if data.selected_steps \
            else f" · #{data.selected}: none"
    if data.running:
        title += f" · {len(data.running)} running"
    if data.cloud_trials:
        title += f" · {data.cloud_trials}/{data.total_trials} trials"
    _title(plt, title, width)
    plt.xlabel("epoch")

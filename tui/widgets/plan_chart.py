"""The plan's next hours as a chart (price bars, lit where the heat pump is planned to run; the tank's planned
temperature on the right axis) and as a table a person can read down."""

from __future__ import annotations

from datetime import datetime, tzinfo

from rich.table import Table
from rich.text import Text
from textual_plotext import PlotextPlot

from controller.protocol import PlanState

BAR_WIDTH = 8


def share_bar(share: float, width: int = BAR_WIDTH) -> str:
    """`████░░░░` for a share of 0.5."""
    filled = round(max(0.0, min(1.0, share)) * width)
    return "█" * filled + "░" * (width - filled)


def plan_table(plan: PlanState, tz: tzinfo | None) -> Table:
    """One row per hour: local time, price, planned heat-pump use, the tank's and the house's temperatures."""
    table = Table(box=None, padding=(0, 1), show_edge=False)
    for column, justify in (("hour", "left"), ("price", "right"), ("heat pump", "left"), ("tank", "right"),
                            ("house", "right")):  # fmt: skip
        table.add_column(column, justify=justify, header_style="bold")  # type: ignore[arg-type]
    cheapest = min((h.price for h in plan.hours), default=0.0)
    dearest = max((h.price for h in plan.hours), default=0.0)
    for hour in plan.hours:
        style = (
            "green"
            if hour.price <= cheapest + 0.2 * (dearest - cheapest)
            else ("red" if hour.price >= dearest - 0.2 * (dearest - cheapest) else "")
        )
        use = Text(share_bar(hour.heat_pump), "cyan" if hour.heat_pump else "dim")
        if hour.aux:
            use.append(" +aux", "bold yellow")
        table.add_row(
            datetime.fromtimestamp(hour.start, tz).strftime("%H:%M"),
            Text(f"{hour.price:.2f}", style),
            use,
            f"{hour.tank_c:.0f} °C",
            f"{hour.house_c:.1f} °C",
        )
    return table


class PlanChart(PlotextPlot):
    """Price per hour as bars (cyan where the heat pump runs), the tank's planned temperature as a line."""

    def draw_empty(self) -> None:
        self.plt.clear_data()
        self.plt.clear_figure()
        self.plt.title("no plan")
        self.refresh()

    def draw(self, plan: PlanState, tz: tzinfo | None) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        if not plan.hours:
            self.draw_empty()
            return
        x = [float(i) for i in range(len(plan.hours))]
        running = [h.price if h.heat_pump >= 0.5 else 0.0 for h in plan.hours]
        idle = [0.0 if h.heat_pump >= 0.5 else h.price for h in plan.hours]
        plt.bar(x, idle, color="gray", label="price")
        plt.bar(x, running, color="cyan", label="price, heat pump on")
        plt.plot(x, [h.tank_c for h in plan.hours], yside="right", color="red", marker="braille", label="tank °C")
        ticks = x[:: max(1, len(x) // 4)]
        plt.xticks(ticks, [datetime.fromtimestamp(plan.hours[int(i)].start, tz).strftime("%H:%M") for i in ticks])
        plt.title("planned heat-pump use against price, and the tank's planned temperature")
        self.refresh()

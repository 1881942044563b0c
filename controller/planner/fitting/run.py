"""One fit from the store: read the last `fit_days` of history, fit and check every part against the last
accepted fit, and say what stays in force. The controller runs it daily (`keeper`); `hearth model fit` on
demand. Reading the store and fitting are separate steps, so the controller can fit off its event loop."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from controller.energy.integrate import Sample
from controller.layout.model import Layout
from controller.planner.fitting.accepted import PARTS, STORE_KEY, ModelFit, combine, describe
from controller.planner.fitting.history import max_age_s, missing, series_from_store
from controller.planner.fitting.parts import Part
from controller.store.database import Store

DAY_S = 86_400.0


def load(store: Store) -> ModelFit | None:
    return ModelFit.from_json(store.recall(STORE_KEY))


def save(store: Store, fit: ModelFit) -> None:
    store.remember(STORE_KEY, fit.to_json())


def model_reply(store: Store, layout: Layout) -> dict[str, object]:
    """What `hearth model show` prints: the stored fit and the line saying what the planner uses."""
    fit = load(store)
    return {"fit": fit.to_json() if fit is not None else None, "in_use": describe(layout.control.planner, fit)}


def window(layout: Layout, now: float, days: int | None = None) -> tuple[float, float]:
    return now - (days or layout.control.planner.fit_days) * DAY_S, now


def fit_series(
    series: Mapping[str, Sequence[Sample]],
    layout: Layout,
    previous: ModelFit | None,
    since: float,
    until: float,
    accept: bool = False,
) -> ModelFit:
    """Fit the history read by `series_from_store` (pure: safe in a worker thread)."""
    from controller.planner.fitting.fit import fit_all  # numpy: off the start-up path
    from controller.planner.fitting.hours import hours_from_series

    gone = missing(layout)
    if gone:
        why = f"the layout has no channel for: {', '.join(gone)}"
        parts = [Part(name, problems=(why,)) for name in PARTS]
    else:
        hours = hours_from_series(series, since, until, max_age_s(layout), layout.control.energy.starting_w)
        parts = fit_all(hours, layout.control.planner, previous.accepted if previous is not None else None)
    return combine(parts, previous, until, since, until, accept)


def refit(store: Store, layout: Layout, now: float, *, days: int | None = None, accept: bool = False) -> ModelFit:
    since, until = window(layout, now, days)
    return fit_series(series_from_store(store, layout, since, until), layout, load(store), since, until, accept)

"""The planner: a receding-horizon plan of heat-pump, pump and aux use over the next 24-48 h.

- `params`: the layout's `[control.planner]` block (the site's model, with defaults for the demo house).
- `model`: the reduced plant the planner optimises over (a lumped tank, a lumped house, the heat pump's
  capacity and COP as functions of outdoor and water temperatures), vectorised with numpy.
- `forecast`: what the planner assumes about the next hours (prices, outdoor temperature, gains, comfort bounds).
- `dp`: the dynamic programme over discretised tank and house temperatures (and whether the compressor ran),
  and the `Plan` it returns: a value table per 15-minute step, read as a feedback law.
- `local`: the planner as the local policy, with the present rules as its fallback when blind or degraded.

Everything here is a pure function of its inputs; the time is passed in.
"""

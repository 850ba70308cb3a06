"""bench/load.py's plan: what each simulated user does, decided before the run.

Every user walks its own path through the explorer's parameters: each recluster asks for a
(model, clustering cell) that no other request of the run asks for (min cluster size, min
samples, leaf or eom, noise reclustering on or off, an element filter), dealt without
repetition from a shuffled grid of cells, and the model switches go round the models in each
user's own order. So a server cache helps only where two requests really are the same (a model
switch back to a model's current cell, the images), and :func:`repeat_share` says how often the
plan itself repeats a cell (0 for the default plan: every recluster is a miss).
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

#: the interaction mix, by share of a user's steps
MIX = (("recluster", 0.40), ("hover", 0.45), ("switch", 0.15))
#: the grid of cells a recluster draws from: min cluster size, min samples, selection, noise reclustering
MCS = range(2, 41)
MS = range(1, 9)
SELECTIONS = ("leaf", "eom")
RECLUSTER_NOISE = (False, True)


@dataclass(frozen=True)
class Step:
    """One interaction: ``action`` recluster | hover | switch; ``model`` the model it acts on;
    ``cell`` (recluster) the control values it sets, by (component id, property)."""

    action: str
    model: str
    cell: dict = field(default_factory=dict, hash=False, compare=False)

    def key(self) -> tuple:
        """What a server cache would key the answer by: the model and the cell."""
        return (self.model, tuple(sorted((k, repr(v)) for k, v in self.cell.items())))


def cells(elements=()) -> list[dict]:
    """Every cell of the grid: the control values of a recluster (``elements``: the dataset's
    elements; each cell filters by none or one of them)."""
    filters = [[]] + [[e] for e in elements]
    return [{("explore-mcs", "value"): mcs, ("explore-ms", "value"): ms, ("explore-selection", "value"): sel,
             ("explore-rc", "value"): rc, ("explore-elements", "value"): el}
            for mcs, ms, sel, rc, el in itertools.product(MCS, MS, SELECTIONS, RECLUSTER_NOISE, filters)]


def plan(users: int, steps: int, *, models: list[str], first_model: str, elements=(), seed: int = 0) -> list[list[Step]]:
    """``steps`` interactions for each of ``users`` users: actions drawn by :data:`MIX` (each
    user's own random stream), switches round the models in the user's own order, and every
    recluster a (model, cell) no other step of the plan has (the grid is large enough for
    20 users x 200 steps on one model; a plan that needs more cells than the grid raises)."""
    rng = random.Random(seed)
    grid = cells(elements)
    pools: dict[str, list[dict]] = {}

    def fresh_cell(model: str) -> dict:
        pool = pools.setdefault(model, rng.sample(grid, len(grid)))
        if not pool:
            raise ValueError(f"the plan asks for more than the {len(grid)} cells of the grid on {model}")
        return pool.pop()

    actions, weights = zip(*MIX)
    out = []
    for u in range(users):
        urng = random.Random(seed * 1000 + u)
        order = urng.sample([m for m in models if m != first_model], max(0, len(models) - 1)) or [first_model]
        switches = itertools.cycle(order + [first_model])
        model, path = first_model, []
        for _ in range(steps):
            action = urng.choices(actions, weights)[0]
            if action == "switch" and len(models) > 1:
                model = next(switches)
                path.append(Step("switch", model))
            elif action == "recluster":
                path.append(Step("recluster", model, fresh_cell(model)))
            else:
                path.append(Step("hover", model))
        out.append(path)
    return out


def repeat_share(plans: list[list[Step]]) -> float:
    """The share of the plan's reclusters whose (model, cell) an earlier step of any user asked
    for: the most a cache of clusterings could answer."""
    seen, repeats, total = set(), 0, 0
    for step in (s for path in plans for s in path if s.action == "recluster"):
        total += 1
        repeats += step.key() in seen
        seen.add(step.key())
    return repeats / total if total else 0.0

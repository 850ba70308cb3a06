"""bench/load.py's plan: every simulated user walks its own path, so that a cache helps only
where two requests really are the same."""

from __future__ import annotations

import sys
from collections import Counter

import pytest

from tests.conftest import PROJECT

sys.path.insert(0, str(PROJECT))

from bench._load_plan import MIX, cells, plan, repeat_share  # noqa: E402
from backend.discover.explorer_view import ExplorerView  # noqa: E402

MODELS = ["m1", "m2", "m3"]


def test_every_recluster_asks_for_a_cell_no_other_request_asks_for():
    paths = plan(20, 150, models=MODELS, first_model="m1", elements=("Fe", "Co"), seed=3)
    reclusters = [s for path in paths for s in path if s.action == "recluster"]
    assert len(reclusters) > 20 * 150 * 0.3
    assert len({s.key() for s in reclusters}) == len(reclusters)
    assert repeat_share(paths) == 0.0
    # the cells vary in every parameter, element filters included
    for key in ("explore-mcs", "explore-ms", "explore-selection", "explore-rc", "explore-elements"):
        assert len({repr(s.cell[(key, "value")]) for s in reclusters}) >= 2, key
    # and a plan that replays one request is what the share catches
    same = [[s for s in paths[0] if s.action == "recluster"][:1] * 3]
    assert repeat_share(same) == pytest.approx(2 / 3)


def test_users_walk_their_own_paths_in_the_mix():
    paths = plan(20, 150, models=MODELS, first_model="m1", seed=0)
    assert len({tuple(s.action for s in p) for p in paths}) == 20  # no two users alike
    counts = Counter(s.action for p in paths for s in p)
    for action, share in MIX:
        assert abs(counts[action] / (20 * 150) - share) < 0.05, action
    # switches go round the models; a user's reclusters act on the model it is on
    for p in paths:
        model = "m1"
        for s in p:
            if s.action == "switch":
                assert s.model != model or len(MODELS) == 1
                model = s.model
            assert s.model == model
    assert {s.model for p in paths for s in p if s.action == "switch"} == set(MODELS)
    assert plan(2, 30, models=MODELS, first_model="m1", seed=0) == plan(2, 30, models=MODELS, first_model="m1", seed=0)


def test_the_cells_are_valid_views_and_a_plan_past_the_grid_says_so():
    grid = cells(("Fe",))
    for cell in grid[:: max(1, len(grid) // 50)]:
        values = {"model": "m1", "min_cluster_size": cell[("explore-mcs", "value")],
                  "min_samples": cell[("explore-ms", "value")], "selection": cell[("explore-selection", "value")],
                  "recluster_noise": cell[("explore-rc", "value")], "elements": cell[("explore-elements", "value")]}
        ExplorerView.from_values(values).params().validate(546)
    with pytest.raises(ValueError, match="more than the"):
        plan(50, 400, models=["m1"], first_model="m1", seed=0)

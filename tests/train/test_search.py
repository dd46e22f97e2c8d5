"""The Optuna search: reproducible under a seed, pruning, budgets, one child run per trial."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loopml.config import Settings
from loopml.data.features import build_column_transformer
from loopml.train.crossval import TrialOutcome
from loopml.train.project import CandidateSpec, SearchSpec, SplitSpec
from loopml.train.search import rank_trials, run_search
from loopml.train.splits import make_split


def _problem(n: int = 120) -> tuple[pd.DataFrame, np.ndarray, list]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    y = 3 * X["a"].to_numpy() - X["b"].to_numpy() + rng.normal(scale=0.3, size=n)
    frame = X.assign(y=y)
    split = make_split(
        SplitSpec(folds=4, test_size=0), frame, target="y", task="regression", seed=0
    )
    return X, y, split.folds


TRANSFORMER = build_column_transformer(
    [{"column": "a", "transform": "standardize"}, {"column": "b", "transform": "standardize"}]
)
CANDIDATES = [CandidateSpec(name="ridge"), CandidateSpec(name="knn")]


def _search(trials: int, n_jobs: int = 1, **kwargs: object) -> object:
    X, y, folds = _problem()
    return run_search(
        X=X,
        y=y,
        folds=folds,
        candidates=CANDIDATES,
        search=SearchSpec(trials=trials, n_jobs=n_jobs, seed=11, **kwargs),
        task="regression",
        primary="rmse",
        transformer=TRANSFORMER,
    )


def _fingerprint(result: object) -> list[tuple]:
    return [
        (t.number, t.candidate, t.state, t.value, tuple(sorted(t.params.items())))
        for t in result.trials
    ]  # type: ignore[attr-defined]


def test_the_same_seed_gives_the_same_trials_and_winner() -> None:
    first, second = _search(10), _search(10)
    assert _fingerprint(first) == _fingerprint(second)
    assert first.best.number == second.best.number  # type: ignore[attr-defined]


@pytest.mark.slow
def test_parallel_processes_give_the_same_trials_as_one_process() -> None:
    assert _fingerprint(_search(8, n_jobs=2)) == _fingerprint(_search(8, n_jobs=1))


def test_every_candidate_is_tried_first_and_the_best_is_the_lowest_rmse() -> None:
    result = _search(10)
    assert [t.candidate for t in result.trials[:2]] == ["ridge", "knn"]
    finished = [t.value for t in result.trials if t.state == "COMPLETE"]
    assert result.best.value == min(finished)
    assert result.best.candidate == "ridge"  # the target is linear


def test_trials_that_lag_the_median_are_pruned_after_a_fold() -> None:
    result = _search(16)
    pruned = [t for t in result.trials if t.state == "PRUNED"]
    assert pruned, "expected the median rule to stop some trials"
    assert all(len(t.intermediate) < 4 for t in pruned)


def test_a_time_budget_stops_starting_trials() -> None:
    result = _search(1000, timeout=0.5)
    assert result.stopped_by == "timeout"
    assert len(result.trials) < 1000


def test_a_failing_trial_is_recorded_and_the_search_goes_on() -> None:
    X, y, folds = _problem(12)
    result = run_search(
        X=X,
        y=y,
        folds=folds,
        candidates=[
            CandidateSpec(name="knn", space={}, params={"n_neighbors": 50}),
            CandidateSpec(name="linear_regression"),
        ],
        search=SearchSpec(trials=5, seed=0),
        task="regression",
        primary="rmse",
        transformer=TRANSFORMER,
    )
    states = {t.candidate: t.state for t in result.trials}
    assert states == {"knn": "FAIL", "linear_regression": "COMPLETE"}
    assert "n_neighbors" in (result.trials[0].error or "")
    assert len(result.trials) == 2  # two distinct configurations, nothing more to try


def test_ties_are_broken_by_prediction_latency_then_size() -> None:
    def trial(number: int, value: float, latency: float, size: int) -> TrialOutcome:
        return TrialOutcome(
            number, "x", {}, "COMPLETE", value=value, predict_us_per_row=latency, model_bytes=size
        )

    trials = [
        trial(0, 1.0, 5.0, 10),
        trial(1, 1.0 + 1e-13, 2.0, 99),
        trial(2, 1.0, 2.0, 50),
        trial(3, 0.5, 9.0, 9),
    ]
    ranked = rank_trials(trials, "maximize")
    assert [t.number for t in ranked] == [2, 1, 0, 3]


def test_each_trial_is_a_child_run_with_params_cv_metrics_and_costs(settings: Settings) -> None:
    from loopml.tracking.client import Client

    client = Client(settings)
    experiment = client.store.get_or_create_experiment("search-test")
    parent = client.create_run(experiment, run_name="parent").info.run_id
    X, y, folds = _problem()
    result = run_search(
        X=X,
        y=y,
        folds=folds,
        candidates=CANDIDATES,
        search=SearchSpec(trials=4, seed=1, pruning=False),
        task="regression",
        primary="rmse",
        transformer=TRANSFORMER,
        client=client,
        experiment_id=experiment,
        parent_run_id=parent,
    )
    client.set_terminated(parent)
    children = client.search_runs([experiment], filter_string="tags.`loopml.kind` = 'trial'")
    assert len(children) == 4
    for child in children:
        assert child.info.parent_run_id == parent
        data = child.data
        assert data.params["candidate"] in {"ridge", "knn"}
        for key in (
            "cv_rmse_mean",
            "cv_rmse_std",
            "cv_r2_mean",
            "fit_seconds",
            "predict_us_per_row",
            "model_bytes",
        ):
            assert key in data.metrics, key
        assert data.metrics["model_bytes"] > 0
    history = client.get_metric_history(result.trials[0].run_id, "rmse_fold")
    assert [m.step for m in history] == [0, 1, 2, 3]
    client.close()

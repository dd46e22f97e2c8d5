"""The model candidates a project can name, each a scikit-learn estimator with a default space.

A candidate is a name (``ridge``, ``random_forest``...), the tasks it handles, a builder
``(task, params, seed) -> estimator`` and a default search space. :func:`build_pipeline` puts
the project's feature transform in front of the estimator, so that exactly the same transform
runs at training and at serving time (and exports to ONNX with the model).

Estimator libraries are imported inside the builders: listing candidates or validating a
project file does not import scikit-learn or torch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loopml.errors import ConfigError
from loopml.train.search_space import CategoricalParam, FloatParam, IntParam

if TYPE_CHECKING:
    from sklearn.base import BaseEstimator
    from sklearn.pipeline import Pipeline

__all__ = ["CANDIDATES", "TASKS", "Candidate", "build_estimator", "build_pipeline", "get_candidate"]

TASKS = ("regression", "binary", "multiclass")
_BOTH = frozenset(TASKS)
_REGRESSION = frozenset({"regression"})
_CLASSIFICATION = frozenset({"binary", "multiclass"})

Space = Mapping[str, IntParam | FloatParam | CategoricalParam]
Builder = Callable[[str, dict[str, Any], int], "BaseEstimator"]


@dataclass(frozen=True)
class Candidate:
    """A named model family: which tasks it solves, how to build it, what to search."""

    name: str
    summary: str
    tasks: frozenset[str]
    builder: Builder
    space: Space = field(default_factory=dict)
    extra: str | None = None  # the pip extra it needs, if any

    def build(self, task: str, params: Mapping[str, Any], seed: int) -> BaseEstimator:
        """A fresh, unfitted estimator for ``task`` with ``params`` and ``seed``."""
        if task not in self.tasks:
            raise ConfigError(
                f"candidate {self.name!r} does not handle task {task!r}",
                hint=f"it handles: {', '.join(sorted(self.tasks))}",
            )
        return self.builder(task, dict(params), seed)


# --- builders (imports are local so that importing this module stays cheap) ----------------


def _linear_regression(task: str, params: dict[str, Any], seed: int) -> BaseEstimator:
    from loopml.train.least_squares import LeastSquaresRegression

    # Ordinary least squares solved exactly (lstsq plus one refinement step), no penalty.
    return LeastSquaresRegression(**params)


def _ridge(task: str, params: dict[str, Any], seed: int) -> BaseEstimator:
    from sklearn.linear_model import Ridge

    return Ridge(**params)


def _lasso(task: str, params: dict[str, Any], seed: int) -> BaseEstimator:
    from sklearn.linear_model import Lasso

    params.setdefault("max_iter", 5000)
    return Lasso(random_state=seed, **params)


def _logistic_regression(task: str, params: dict[str, Any], seed: int) -> BaseEstimator:
    from sklearn.linear_model import LogisticRegression

    params.setdefault("max_iter", 2000)
    return LogisticRegression(random_state=seed, **params)


def _linear_svm(task: str, params: dict[str, Any], seed: int) -> BaseEstimator:
    if task == "regression":
        from sklearn.svm import LinearSVR

        params.setdefault("max_iter", 5000)
        return LinearSVR(random_state=seed, **params)
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import LinearSVC

    params.setdefault("max_iter", 5000)
    # A linear SVM has no probabilities; Platt scaling gives the ones ROC-AUC, log loss and
    # calibration need, and converts to ONNX with the rest of the pipeline.
    return CalibratedClassifierCV(
        LinearSVC(random_state=seed, **params), cv=3, method="sigmoid", ensemble=False
    )


def _svm(task: str, params: dict[str, Any], seed: int) -> BaseEstimator:
    if task == "regression":
        from sklearn.svm import SVR

        return SVR(**params)
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC

    # Platt scaling as scikit-learn 1.9 recommends in place of SVC(probability=True).
    return CalibratedClassifierCV(
        SVC(random_state=seed, **params), cv=3, method="sigmoid", ensemble=False
    )


def _decision_tree(task: str, params: dict[str, Any], seed: int) -> BaseEstimator:
    if task == "regression":
        from sklearn.tree import DecisionTreeRegressor

        return DecisionTreeRegressor(random_state=seed, **params)
    from sklearn.tree import DecisionTreeClassifier

    return DecisionTreeClassifier(random_state=seed, **params)


def _random_forest(task: str, params: dict[str, Any], seed: int) -> BaseEstimator:
    if task == "regression":
        from sklearn.ensemble import RandomForestRegressor

        return RandomForestRegressor(random_state=seed, **params)
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(random_state=seed, **params)


def _hist_gradient_boosting(task: str, params: dict[str, Any], seed: int) -> BaseEstimator:
    if task == "regression":
        from sklearn.ensemble import HistGradientBoostingRegressor

        return HistGradientBoostingRegressor(random_state=seed, **params)
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(random_state=seed, **params)


def _knn(task: str, params: dict[str, Any], seed: int) -> BaseEstimator:
    if task == "regression":
        from sklearn.neighbors import KNeighborsRegressor

        return KNeighborsRegressor(**params)
    from sklearn.neighbors import KNeighborsClassifier

    return KNeighborsClassifier(**params)


def _mlp(task: str, params: dict[str, Any], seed: int) -> BaseEstimator:
    from loopml.train.torch_mlp import TorchMLPClassifier, TorchMLPRegressor

    if task == "regression":
        return TorchMLPRegressor(random_state=seed, **params)
    return TorchMLPClassifier(random_state=seed, **params)


def _f(low: float, high: float, log: bool = True) -> FloatParam:
    return FloatParam(low=low, high=high, log=log)


def _i(low: int, high: int, log: bool = False) -> IntParam:
    return IntParam(low=low, high=high, log=log)


# Default spaces are deliberately modest: a project that wants more says so in loopml.yaml.
CANDIDATES: dict[str, Candidate] = {
    c.name: c
    for c in (
        Candidate(
            "linear_regression",
            "ordinary least squares, solved exactly",
            _REGRESSION,
            _linear_regression,
        ),
        Candidate(
            "ridge",
            "least squares with an L2 penalty",
            _REGRESSION,
            _ridge,
            {"alpha": _f(1e-4, 1e3)},
        ),
        Candidate(
            "lasso",
            "least squares with an L1 penalty",
            _REGRESSION,
            _lasso,
            {"alpha": _f(1e-5, 10.0)},
        ),
        Candidate(
            "logistic_regression",
            "linear model of the log-odds",
            _CLASSIFICATION,
            _logistic_regression,
            {"C": _f(1e-3, 1e3)},
        ),
        Candidate(
            "linear_svm", "linear support vector machine", _BOTH, _linear_svm, {"C": _f(1e-3, 1e2)}
        ),
        Candidate(
            "svm",
            "kernel (RBF) support vector machine",
            _BOTH,
            _svm,
            {"C": _f(1e-2, 1e3), "gamma": _f(1e-4, 1.0)},
        ),
        Candidate(
            "decision_tree",
            "a single CART tree",
            _BOTH,
            _decision_tree,
            {"max_depth": _i(1, 16), "min_samples_leaf": _i(1, 50, log=True)},
        ),
        Candidate(
            "random_forest",
            "bagged decision trees",
            _BOTH,
            _random_forest,
            {
                "n_estimators": _i(20, 200, log=True),
                "max_depth": _i(2, 20),
                "min_samples_leaf": _i(1, 20, log=True),
                "max_features": _f(0.2, 1.0, log=False),
            },
        ),
        Candidate(
            "hist_gradient_boosting",
            "histogram gradient boosting (LightGBM-style)",
            _BOTH,
            _hist_gradient_boosting,
            {
                "learning_rate": _f(0.01, 0.5),
                "max_iter": _i(50, 300, log=True),
                "max_leaf_nodes": _i(8, 64, log=True),
                "l2_regularization": _f(1e-6, 10.0),
            },
        ),
        Candidate(
            "knn",
            "k nearest neighbours",
            _BOTH,
            _knn,
            {
                "n_neighbors": _i(1, 30),
                "weights": CategoricalParam(choices=["uniform", "distance"]),
            },
        ),
        Candidate(
            "mlp",
            "multi-layer perceptron in PyTorch",
            _BOTH,
            _mlp,
            {
                "hidden_units": _i(16, 128, log=True),
                "hidden_layers": _i(1, 3),
                "learning_rate": _f(1e-4, 1e-1),
                "weight_decay": _f(1e-6, 1e-2),
            },
            extra="torch",
        ),
    )
}


def get_candidate(name: str) -> Candidate:
    """The candidate called ``name``, or :class:`ConfigError` listing the valid names."""
    try:
        return CANDIDATES[name]
    except KeyError:
        raise ConfigError(
            f"unknown candidate {name!r}",
            hint=f"valid candidates: {', '.join(CANDIDATES)}",
        ) from None


def build_estimator(name: str, task: str, params: Mapping[str, Any], seed: int) -> BaseEstimator:
    """A fresh estimator of candidate ``name``; bad hyperparameters raise :class:`ConfigError`."""
    candidate = get_candidate(name)
    try:
        return candidate.build(task, params, seed)
    except TypeError as exc:
        # An unknown keyword: name it and list what the estimator accepts.
        raise ConfigError(
            f"candidate {name!r} rejected its parameters {dict(params)!r}: {exc}",
            hint="see the estimator's documentation for valid parameter names",
        ) from None


def build_pipeline(
    name: str,
    task: str,
    params: Mapping[str, Any],
    *,
    transformer: Any,
    seed: int,
) -> Pipeline:
    """``Pipeline([("features", transformer), ("model", estimator)])``, unfitted.

    ``transformer`` is the project's feature transform (a scikit-learn ``ColumnTransformer``,
    cloned here so that every trial fits its own copy).
    """
    from sklearn.base import clone
    from sklearn.pipeline import Pipeline

    estimator = build_estimator(name, task, params, seed)
    return Pipeline([("features", clone(transformer)), ("model", estimator)])

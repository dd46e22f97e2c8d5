"""A multi-layer perceptron in PyTorch behind the scikit-learn estimator contract.

``TorchMLPRegressor`` and ``TorchMLPClassifier`` follow scikit-learn's rules: ``__init__``
stores hyperparameters unchanged, ``fit`` returns ``self``, learned state ends in ``_``,
``clone``/``get_params`` work, and an unfitted model raises :class:`loopml.errors.NotFittedError`.
So they sit in a ``Pipeline`` after the feature transform like any other candidate.

torch is imported inside ``fit``/``predict`` (the ``torch`` extra): importing this module is
cheap and a missing torch raises :class:`MissingDependencyError` with the install line.

For ONNX export the fitted network is ``module_`` (inputs: the transformed features as
float32). For regression the target scaling used in training is folded into its last layer,
so ``module_`` outputs predictions directly; for classification it outputs logits and
:meth:`TorchMLPClassifier.proba_module` appends the softmax.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from loopml._optional import require
from loopml.errors import InvalidInputError, NotFittedError

if TYPE_CHECKING:
    import torch

__all__ = ["TorchMLPClassifier", "TorchMLPRegressor"]


def _torch() -> Any:
    return require("torch", extra="torch", purpose="the 'mlp' candidate")


class _TorchMLP(BaseEstimator):
    def __init__(
        self,
        hidden_units: int = 64,
        hidden_layers: int = 2,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        epochs: int = 100,
        batch_size: int = 64,
        random_state: int | None = None,
    ) -> None:
        self.hidden_units = hidden_units
        self.hidden_layers = hidden_layers
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.batch_size = batch_size
        self.random_state = random_state

    # -- shared machinery --------------------------------------------------------------------

    def _check_params(self) -> None:
        for name in ("hidden_units", "epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value < 1:
                raise InvalidInputError(
                    f"{type(self).__name__} parameter {name} has value {value!r}; "
                    "it must be a positive integer"
                )
        if not isinstance(self.hidden_layers, int | np.integer) or self.hidden_layers < 0:
            raise InvalidInputError(
                f"{type(self).__name__} parameter hidden_layers has value "
                f"{self.hidden_layers!r}; it must be an integer >= 0"
            )

    def _network(self, n_in: int, n_out: int) -> torch.nn.Module:
        nn = _torch().nn
        layers: list[Any] = []
        width = n_in
        for _ in range(int(self.hidden_layers)):
            layers += [nn.Linear(width, int(self.hidden_units)), nn.ReLU()]
            width = int(self.hidden_units)
        layers.append(nn.Linear(width, n_out))
        return nn.Sequential(*layers)

    def _train(self, X: np.ndarray, target: np.ndarray, loss_fn: Any, n_out: int) -> None:
        torch = _torch()
        self._check_params()
        seed = 0 if self.random_state is None else int(self.random_state)
        generator = torch.Generator().manual_seed(seed)
        # Initial weights come from the global generator; seed it so fits repeat exactly.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            network = self._network(X.shape[1], n_out)
        optimizer = torch.optim.Adam(
            network.parameters(), lr=float(self.learning_rate), weight_decay=self.weight_decay
        )
        inputs = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
        targets = torch.from_numpy(target)
        n = inputs.shape[0]
        batch = min(int(self.batch_size), n)
        self.loss_curve_: list[float] = []
        network.train()
        for _ in range(int(self.epochs)):
            order = torch.randperm(n, generator=generator)
            total = 0.0
            for start in range(0, n, batch):
                index = order[start : start + batch]
                optimizer.zero_grad()
                loss = loss_fn(network(inputs[index]), targets[index])
                loss.backward()
                optimizer.step()
                total += loss.item() * len(index)
            self.loss_curve_.append(total / n)
        network.eval()
        self.module_ = network
        self.n_features_in_ = X.shape[1]

    def _forward(self, X: Any) -> np.ndarray:
        if not hasattr(self, "module_"):
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                "appropriate arguments before using this estimator."
            )
        torch = _torch()
        X = _as_matrix(X)
        if X.shape[1] != self.n_features_in_:
            raise InvalidInputError(
                f"X has {X.shape[1]} features, but {type(self).__name__} was fitted with "
                f"{self.n_features_in_}"
            )
        with torch.no_grad():
            out = self.module_(torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)))
        return out.numpy().astype(np.float64)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


class TorchMLPRegressor(RegressorMixin, _TorchMLP):
    """MLP regressor trained with Adam on mean squared error (targets standardised)."""

    def fit(self, X: Any, y: Any) -> TorchMLPRegressor:
        torch = _torch()
        X = _as_matrix(X)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        mean, std = float(y.mean()), float(y.std()) or 1.0
        scaled = ((y - mean) / std).astype(np.float32).reshape(-1, 1)
        self._train(X, scaled, torch.nn.MSELoss(), 1)
        # Fold the target scaling into the last layer: module_ then predicts y itself, which
        # is what an exported ONNX graph must do.
        last: Any = list(self.module_.children())[-1]
        with torch.no_grad():
            last.weight.mul_(std)
            last.bias.mul_(std).add_(mean)
        return self

    def predict(self, X: Any) -> np.ndarray:
        return self._forward(X).reshape(-1)


class TorchMLPClassifier(ClassifierMixin, _TorchMLP):
    """MLP classifier trained with Adam on cross-entropy; any hashable labels."""

    def fit(self, X: Any, y: Any) -> TorchMLPClassifier:
        torch = _torch()
        X = _as_matrix(X)
        self.classes_, encoded = np.unique(np.asarray(y), return_inverse=True)
        if len(self.classes_) < 2:
            raise InvalidInputError(
                f"{type(self).__name__} needs at least 2 classes in y, got {len(self.classes_)}"
            )
        self._train(X, encoded.astype(np.int64), torch.nn.CrossEntropyLoss(), len(self.classes_))
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        logits = self._forward(X)
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self._forward(X), axis=1)]

    def proba_module(self) -> torch.nn.Module:
        """The fitted network followed by a softmax: inputs → class probabilities."""
        nn = _torch().nn
        self._forward(np.zeros((1, getattr(self, "n_features_in_", 0)), dtype=np.float32))
        return nn.Sequential(self.module_, nn.Softmax(dim=1)).eval()


def _as_matrix(X: Any) -> np.ndarray:
    matrix = np.asarray(X.toarray() if hasattr(X, "toarray") else X, dtype=np.float64)
    if matrix.ndim != 2:
        raise InvalidInputError(f"expected a 2-D feature matrix, got shape {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise InvalidInputError(
            "the feature matrix contains NaN or infinite values",
            hint="impute missing values in the project's cleaning or feature steps",
        )
    return matrix

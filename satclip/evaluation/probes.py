"""Probes on frozen features (as in the SatCLIP paper): a linear probe and a small MLP, with
random and spatial-block (checkerboard) splits. Uses scikit-learn (imported lazily).

Linear probe: ridge regression / logistic regression on standardised features, the penalty
picked by 3-fold cross-validation on the training part. MLP probe: one hidden layer of 64
ReLU units, Adam, early stopping. Every random choice takes the split seed, so identical
seeds give identical numbers.

``quick=True`` (``satclip evaluate --quick``) trades the penalty search for speed: ridge picks
its alpha by the closed-form leave-one-out error (no refits), logistic regression uses a fixed
C = 1 (the cross-validated search over C up to 1e4 is what costs: weakly penalised multi-class
fits run to the iteration limit), and the MLP stops after at most 100 epochs. Quick numbers are
a first look, not the table to report.
"""

from __future__ import annotations

import numpy as np

PROBES = ("linear", "mlp")
SPLITS = ("random", "spatial")


def split(lonlat: np.ndarray, kind: str, seed: int, test_fraction: float = 0.2, block_deg: float = 10.0):
    """Boolean test mask. ``random``: a random ``test_fraction`` of the points. ``spatial``:
    a checkerboard of ``block_deg`` blocks (shifted by the seed); the test set is one colour,
    so test points are never next to a training point of the same block. The blocks shrink to
    an eighth of the points' extent where that is smaller (a single-city user task), so that
    both colours hold points."""
    rng = np.random.default_rng(seed)
    n = len(lonlat)
    if kind == "random":
        test = np.zeros(n, dtype=bool)
        test[rng.choice(n, size=max(1, int(round(test_fraction * n))), replace=False)] = True
        return test
    if kind == "spatial":
        extent = float(np.ptp(lonlat, axis=0).max()) if n else 0.0
        block_deg = min(block_deg, max(extent / 8, 1e-6))
        off = rng.uniform(0, block_deg, 2)
        bx = np.floor((lonlat[:, 0] + 180 + off[0]) / block_deg).astype(np.int64)
        by = np.floor((lonlat[:, 1] + 90 + off[1]) / block_deg).astype(np.int64)
        return ((bx + by) % 2) == 1
    raise ValueError(f"unknown split {kind!r}; expected one of {SPLITS}")


def _model(probe: str, kind: str, seed: int, quick: bool = False):
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV, RidgeCV
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if probe == "linear" and kind == "regression":
        est = RidgeCV(alphas=np.logspace(-3, 3, 13), cv=None if quick else 3)
    elif probe == "linear":
        est = (LogisticRegression(C=1.0, max_iter=200, random_state=seed) if quick
               else LogisticRegressionCV(Cs=7, cv=3, max_iter=500, random_state=seed))
    elif probe == "mlp":
        cls = MLPRegressor if kind == "regression" else MLPClassifier
        est = cls(hidden_layer_sizes=(64,), alpha=1e-3, max_iter=100 if quick else 300, early_stopping=True,
                  n_iter_no_change=15, random_state=seed)
    else:
        raise ValueError(f"unknown probe {probe!r}; expected one of {PROBES}")
    return make_pipeline(StandardScaler(), est)


def score(kind: str, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    if kind == "regression":
        ss_res = float(((y_true - y_pred) ** 2).sum())
        ss_tot = float(((y_true - y_true.mean()) ** 2).sum())
        return 1.0 - ss_res / ss_tot if ss_tot > 0 else 0.0
    return float((y_true == y_pred).mean())


def fit_predict(probe: str, kind: str, x_train, y_train, x_test, seed: int, quick: bool = False):
    """Fits the probe and returns (predictions on x_test, the fitted model). ``quick``: the
    cheaper settings described in the module docstring."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    if kind == "classification":
        # Classes with fewer than 3 training points (a rare Koppen zone on one side of a spatial
        # split) cannot be cross-validated or early-stopped (stratified folds): those training
        # points are left out; their test points still count as errors.
        labels, counts = np.unique(y_train, return_counts=True)
        keep = np.isin(y_train, labels[counts >= 3])
        x_train, y_train = x_train[keep], y_train[keep]
    y_fit = y_train
    scale = None
    if kind == "regression":  # standardise the target too, so one alpha grid fits every task
        scale = (float(y_train.mean()), float(y_train.std()) or 1.0)
        y_fit = (y_train - scale[0]) / scale[1]
    model = _model(probe, kind, seed, quick)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", FutureWarning)  # sklearn's LogisticRegressionCV attribute notice
        model.fit(x_train, y_fit)
    pred = model.predict(x_test)
    if scale is not None:
        pred = pred * scale[1] + scale[0]
    return pred, (model, scale)


def constant_baseline(kind: str, y_train: np.ndarray, n_test: int) -> np.ndarray:
    """The best constant: the training mean (regression) or majority class."""
    if kind == "regression":
        return np.full(n_test, y_train.mean())
    return np.full(n_test, np.bincount(y_train).argmax())

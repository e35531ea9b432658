"""Expected model change: ask for the labels that would move the model's weights the most.

For a model trained by gradient descent, the change a labeled example causes is the gradient of the
loss at that example. Its label is unknown, so expected gradient length (EGL) averages the gradient's
norm over the labels, weighted by the model's own probabilities (Settles, Craven & Ray 2008,
*Multiple-instance active learning*, NeurIPS).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, ClassVar

from river import compose

from activestream.score.base import Measure
from activestream.score.uncertainty import normalise
from activestream.types import Features, Proba

__all__ = ["ExpectedModelChange", "gradient_factor", "linear_inputs"]


def gradient_factor(proba: Proba) -> float:
    r"""The label-dependent part of the expected gradient length of a softmax model, in ``[0, 1]``.

    For softmax regression with weight matrix $W$ the log-loss gradient for label $y$ is
    $(p - e_y)\,\tilde{x}^\top$, whose norm is $\lVert p - e_y \rVert \cdot \lVert \tilde{x} \rVert$, so

    $$\operatorname{EGL}(x) = \lVert \tilde{x} \rVert \sum_y p_y \lVert p - e_y \rVert$$

    This function returns the sum divided by its maximum $\sqrt{(C - 1)/C}$, reached by the uniform
    distribution. For a binary logistic regression (one weight vector, gradient $(p_1 - y)\tilde{x}$)
    the factor is $2 p_1 (1 - p_1)$ before and $4 p_1 (1 - p_1)$ after normalisation: the same value.
    Source: Settles, Craven & Ray (2008), *Multiple-instance active learning*, NeurIPS.

    Parameters
    ----------
    proba
        Class probabilities; repaired with ``normalise``. Cold start gives ``1.0``.

    Examples
    --------
    >>> round(gradient_factor({True: 0.9, False: 0.1}), 4)  # 4 * 0.9 * 0.1
    0.36
    >>> gradient_factor({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})
    1.0

    """
    p = normalise(proba)
    if len(proba) < 2 or not p:
        return 1.0
    squares = math.fsum(q * q for q in p.values())
    # ||p - e_y||^2 = sum_k p_k^2 - 2 p_y + 1
    expected = math.fsum(q * math.sqrt(max(0.0, squares - 2.0 * q + 1.0)) for q in p.values())
    n_classes = len(p)
    return min(1.0, max(0.0, expected / math.sqrt((n_classes - 1) / n_classes)))


def linear_inputs(model: Any, x: Features) -> Features | None:
    """The features as the final linear model of ``model`` sees them, or ``None`` if it is not linear.

    A river ``Pipeline`` transforms ``x`` through every step but the last with ``transform_one``
    (nothing learns: the stream's state is the served model's business). A model counts as linear when
    it exposes river's ``weights`` attribute (``LogisticRegression``, ``SoftmaxRegression``,
    ``Perceptron``, ``PAClassifier``...). A wrapper with a ``serving_model`` (the drift-adaptive
    classifier) is unwrapped first.

    Examples
    --------
    >>> from river import linear_model, naive_bayes, preprocessing
    >>> model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    >>> model.learn_one({"a": 1.0}, True); model.learn_one({"a": 3.0}, False)
    >>> linear_inputs(model, {"a": 5.0})
    {'a': 3.0}
    >>> linear_inputs(naive_bayes.GaussianNB(), {"a": 5.0}) is None
    True

    """
    if model is None:
        return None
    # A drift-adaptive classifier wraps several models; the served one is what the label would change.
    model = getattr(model, "serving_model", model)
    steps = list(model.steps.values()) if isinstance(model, compose.Pipeline) else [model]
    *transformers, last = steps
    if not hasattr(last, "weights"):
        return None
    for step in transformers:
        # Anomaly filters and the like do not transform; the pipeline skips them at prediction too.
        transform = getattr(step, "transform_one", None)
        if transform is not None:
            x = transform(x)
    return x


def _norm_with_bias(x: Features) -> float:
    # The intercept is a weight on a constant feature 1: its gradient adds 1 to the squared norm.
    squares = (float(v) ** 2 for v in x.values() if isinstance(v, numbers.Real) and math.isfinite(v))
    return math.sqrt(math.fsum(squares) + 1.0)


class ExpectedModelChange(Measure):
    r"""Expected gradient length of a linear model, normalised to ``[0, 1]``.

    $$\operatorname{EMC}(x) = \operatorname{gradient\_factor}(p) \cdot
    \min\left(1, \frac{\sqrt{\lVert \tilde{x} \rVert^2 + 1}}{r}\right)$$

    where $\tilde{x}$ is the input as the final linear model sees it (``linear_inputs``), the $+1$ is the
    intercept's constant feature, and $r$ is the running maximum of that norm over the events scored so
    far (including the current one, so the ratio never exceeds ``1``). The ratio replaces the unbounded
    $\lVert \tilde{x} \rVert$ of the expected gradient length by a deterministic, bounded stand-in.
    When ``model`` is ``None`` or not linear only the probability factor is used. The running maximum
    is not updated on cold start, whose scores are ``1.0``. Source: Settles, Craven & Ray (2008),
    *Multiple-instance active learning*, NeurIPS.

    Examples
    --------
    >>> measure = ExpectedModelChange()
    >>> round(measure.score({"a": 3.0}, {True: 0.5, False: 0.5}), 4)  # model=None: 4 p (1 - p)
    1.0
    >>> from river import linear_model
    >>> model = linear_model.LogisticRegression()
    >>> measure.score({"a": 3.0}, {True: 0.5, False: 0.5}, model)  # sets the running max
    1.0
    >>> round(measure.score({"a": 0.0}, {True: 0.5, False: 0.5}, model), 4)  # 1 / sqrt(10)
    0.3162

    """

    name: ClassVar[str] = "expected_model_change"

    def __init__(self) -> None:
        self.max_norm = 0.0

    def score(self, x: Features, proba: Proba, model: Any = None) -> float:
        """Normalised expected gradient length of ``x`` under ``model``; ``1.0`` on cold start."""
        if self.is_cold(x, proba):
            return 1.0
        factor = gradient_factor(proba)
        inputs = linear_inputs(model, x)
        if inputs is None:
            return factor
        norm = _norm_with_bias(inputs)
        self.max_norm = max(self.max_norm, norm)
        return min(1.0, max(0.0, factor * min(1.0, norm / self.max_norm)))

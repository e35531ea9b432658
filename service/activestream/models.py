"""Base classifiers by name: a small registry of river models that work well on streams.

>>> model = make_model("logreg")
>>> model.learn_one({"price": 3.2, "region": "north"}, True)
>>> list(model.steps)[-1]
'LogisticRegression'
>>> sorted(MODELS)
['arf', 'gnb', 'hat', 'ht', 'logreg']
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

from river import base, compose, forest, linear_model, naive_bayes, optim, preprocessing, tree


def _logreg(seed: int | None) -> base.Classifier:
    # Scaling matters: SGD on raw features of very different ranges (e.g. Agrawal's salaries) diverges.
    # Events may carry string features too (the wire format allows them): those are one-hot encoded.
    numeric = compose.SelectType(numbers.Number) | preprocessing.StandardScaler()
    categorical = compose.SelectType(str) | preprocessing.OneHotEncoder()
    return (numeric + categorical) | linear_model.LogisticRegression(optimizer=optim.SGD(0.05))


def _hat(seed: int | None) -> base.Classifier:
    return tree.HoeffdingAdaptiveTreeClassifier(grace_period=50, seed=seed)


def _ht(seed: int | None) -> base.Classifier:
    return tree.HoeffdingTreeClassifier(grace_period=50)


def _gnb(seed: int | None) -> base.Classifier:
    return naive_bayes.GaussianNB()


def _arf(seed: int | None) -> base.Classifier:
    return forest.ARFClassifier(n_models=10, seed=seed)


#: Factories by name; each takes a seed (ignored by deterministic models).
MODELS: dict[str, Callable[[int | None], base.Classifier]] = {
    "logreg": _logreg,
    "hat": _hat,
    "ht": _ht,
    "gnb": _gnb,
    "arf": _arf,
}


def make_model(name: str, seed: int | None = None) -> base.Classifier:
    """A fresh, untrained classifier by registry name.

    >>> make_model("gnb")
    GaussianNB ()
    >>> make_model("svm")
    Traceback (most recent call last):
    ...
    ValueError: unknown model 'svm'; choose one of: arf, gnb, hat, ht, logreg
    """
    try:
        factory = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(sorted(MODELS))}") from None
    return factory(seed)

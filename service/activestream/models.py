"""Base classifiers by name: a small registry of river models that work well on streams.

>>> model = make_model("logreg")
>>> model.learn_one({"price": 3.2, "region": "north"}, True)
>>> list(model.steps)[-1]
'LogisticRegression'
>>> sorted(MODELS)
['arf', 'gnb', 'hat', 'ht', 'logreg', 'logreg_ovr']

``logreg`` is a binary classifier: it learns the labels ``True``/``False`` (or ``1``/``0``) only, and the
learner refuses any other label with a clear error instead of folding it into ``True``. For more classes,
or labels such as ``"up"``/``"down"``, ``logreg_ovr`` is the same model one-vs-rest; the trees, Gaussian NB
and the forest are multi-class already.

>>> binary_only(make_model("logreg")), binary_only(make_model("logreg_ovr")), binary_only(make_model("hat"))
(True, False, False)
"""

from __future__ import annotations

import math
import numbers
import random
from collections.abc import Callable

from river import (
    base,
    compose,
    forest,
    linear_model,
    multiclass,
    naive_bayes,
    optim,
    preprocessing,
    proba,
    tree,
)
from river.naive_bayes.base import BaseNB

from activestream.types import ClassLabel, Features

#: The value types events carry (``messages.Event``): a selection by type decides them without ``isinstance``.
_WIRE_TYPES = (float, int, bool, str)


class SelectType(compose.SelectType):
    """river's ``SelectType``, selecting the same features, at a third of its cost for event values.

    ``isinstance(v, numbers.Number)`` goes through the ABC machinery: river's selection cost 1.8 µs per
    call on ten floats, and a learned label goes through it several times in each drift arm. An event's
    value is a ``float``, ``int``, ``bool`` or ``str`` (exactly, not a subclass), whose answer is known
    once; any other type is still asked with ``isinstance``.

    >>> select = SelectType(numbers.Number)
    >>> select.transform_one({"a": 1.5, "b": "s", "c": True, "d": 2})
    {'a': 1.5, 'c': True, 'd': 2}
    >>> river_s = compose.SelectType(numbers.Number)
    >>> import fractions
    >>> x = {"f": fractions.Fraction(1, 3), "n": None}
    >>> select.transform_one(x) == river_s.transform_one(x)
    True
    """

    def __init__(self, *types: type):
        super().__init__(*types)
        self._selected = frozenset(t for t in _WIRE_TYPES if issubclass(t, types))
        self._dropped = frozenset(_WIRE_TYPES) - self._selected

    def transform_one(self, x: Features) -> Features:
        selected, dropped, types = self._selected, self._dropped, self.types
        return {
            k: v
            for k, v in x.items()
            if type(v) in selected or (type(v) not in dropped and isinstance(v, types))
        }


def _features() -> compose.TransformerUnion:
    # Scaling matters: SGD on raw features of very different ranges (e.g. Agrawal's salaries) diverges.
    # Events may carry string features too (the wire format allows them): those are one-hot encoded.
    numeric = SelectType(numbers.Number) | preprocessing.StandardScaler()
    categorical = SelectType(str) | preprocessing.OneHotEncoder()
    return numeric + categorical


#: river's selection by type, and ours (the same selection; older checkpoints hold river's).
_SELECT_TYPES = (compose.SelectType, SelectType)

#: Exact value types that are numbers to both selections and that the scaler takes as they are (the
#: feature matrix of batch scoring too; strings go through the one-hot encoder, any other type, e.g. a
#: numpy scalar from a caller other than the service, through river's pipeline).
NUMBER_TYPES = frozenset({float, int, bool})


def features_parts(
    union: base.Estimator,
) -> tuple[preprocessing.StandardScaler, preprocessing.OneHotEncoder] | None:
    """The scaler and the encoder of a features union as ``_features()`` builds it, else ``None``.

    >>> scaler, encoder = features_parts(_features())
    >>> type(scaler).__name__, type(encoder).__name__
    ('StandardScaler', 'OneHotEncoder')
    >>> features_parts(preprocessing.StandardScaler()) is None
    True
    """
    if type(union) is not compose.TransformerUnion or len(union.transformers) != 2:
        return None
    branches = [list(t.steps.values()) for t in union.transformers.values() if type(t) is compose.Pipeline]
    if len(branches) != 2 or any(len(b) != 2 for b in branches):
        return None
    (select_num, scaler), (select_str, encoder) = branches
    if not (
        type(select_num) in _SELECT_TYPES
        and select_num.types == (numbers.Number,)
        and type(scaler) is preprocessing.StandardScaler
        and scaler.with_std
        and scaler.window_size is None
        and type(select_str) in _SELECT_TYPES
        and select_str.types == (str,)
        and type(encoder) is preprocessing.OneHotEncoder
        and encoder.categories is None
        and not encoder.drop_zeros
        and not encoder.drop_first
    ):
        return None
    return scaler, encoder


class ScaledPipeline(compose.Pipeline):
    """river's ``Pipeline`` of the features union and a classifier, with numeric events sent straight to
    the scaler: the same arithmetic in the same order, without river's routing of dicts.

    For an event whose values are all ``float``, ``int`` or ``bool``, while the encoder has seen no string
    (it emits nothing then), river's pipeline selects a copy of the event for the scaler, selects nothing
    for the encoder, merges the two outputs and hands the scaled event to the classifier. Only the
    scaler's and the classifier's own methods change anything; they are called here directly, on the
    same values in the same order. That routing was most of a learned label's cost: 17.5 µs to learn
    ten floats, 6.0 to predict, against about 7 and 2 for the calls themselves. Any other event, a
    changed structure or river's ``learn_during_predict`` go through river's pipeline.

    >>> from river import linear_model
    >>> ours = ScaledPipeline(_features(), linear_model.LogisticRegression())
    >>> rivers = compose.Pipeline(_features(), linear_model.LogisticRegression())
    >>> for x, y in [({"a": 1.0, "b": 2}, True), ({"a": 0.5, "b": 1}, False), ({"a": 3.0, "b": "s"}, True)]:
    ...     ours.learn_one(x, y); rivers.learn_one(x, y)
    >>> ours.predict_proba_one({"a": 2.0, "b": 0}) == rivers.predict_proba_one({"a": 2.0, "b": 0})
    True
    >>> ours.clone().__class__.__name__
    'ScaledPipeline'
    """

    _direct: tuple[preprocessing.StandardScaler, preprocessing.OneHotEncoder, base.Estimator] | None = None

    def _build_plan(self) -> tuple:
        # river rebuilds its plan whenever the steps change: the direct route is found with it.
        plan = super()._build_plan()
        steps = list(self.steps.values())
        parts = features_parts(steps[0]) if len(steps) == 2 else None
        self._direct = None if parts is None else (*parts, steps[1])
        return plan

    def _direct_route(
        self, x: Features, params: dict
    ) -> tuple[preprocessing.StandardScaler, base.Estimator] | None:
        """The scaler and the classifier when ``x`` may skip river's routing, else ``None``."""
        if self._plan is None:
            self._build_plan()
        direct = self._direct
        if (
            direct is None
            or params
            or self._LEARN_UNSUPERVISED_DURING_PREDICT
            or direct[1]._zero_dict  # the encoder emits its zeros for every event
            or not NUMBER_TYPES.issuperset(map(type, x.values()))
        ):
            return None
        return direct[0], direct[2]

    def learn_one(self, x: Features, y: ClassLabel = None, **params) -> None:  # type: ignore[override]
        route = self._direct_route(x, params)
        if route is None:
            return super().learn_one(x, y, **params)
        scaler, classifier = route
        scaler.learn_one(x)
        classifier.learn_one(scaler.transform_one(x), y)
        return None

    def predict_proba_one(self, x: Features, **params) -> dict[ClassLabel, float]:  # type: ignore[override]
        route = self._direct_route(x, params)
        if route is None:
            return super().predict_proba_one(x, **params)
        scaler, classifier = route
        return classifier.predict_proba_one(scaler.transform_one(x))


def _logreg(seed: int | None) -> base.Classifier:
    return ScaledPipeline(_features(), linear_model.LogisticRegression(optimizer=optim.SGD(0.05)))


def _logreg_ovr(seed: int | None) -> base.Classifier:
    one_vs_rest = multiclass.OneVsRestClassifier(linear_model.LogisticRegression(optimizer=optim.SGD(0.05)))
    return ScaledPipeline(_features(), one_vs_rest)


def _hat(seed: int | None) -> base.Classifier:
    return tree.HoeffdingAdaptiveTreeClassifier(grace_period=50, seed=seed)


def _ht(seed: int | None) -> base.Classifier:
    return tree.HoeffdingTreeClassifier(grace_period=50)


def naive_bayes_proba(model: BaseNB, x: Features) -> dict[ClassLabel, float]:
    """river's ``BaseNB.predict_proba_one``, with scipy's ``logsumexp`` arithmetic done on floats.

    Most of a naive Bayes model's prediction cost was scipy's array machinery around a handful of
    numbers (one log-likelihood per class): two thirds of a committee's, more than half of a served
    Gaussian NB's. The sum follows scipy's: the maximum ``a*`` (and its ``m`` ties) separated out,
    ``log1p(Σ exp(a − a*) / m) + log m + a*``; a non-finite log-likelihood goes to river itself.

    >>> from river import naive_bayes
    >>> model = naive_bayes.GaussianNB()
    >>> for v, y in [(0.0, "a"), (0.2, "a"), (1.0, "b"), (1.3, "b")]:
    ...     model.learn_one({"v": v}, y)
    >>> ours, rivers = naive_bayes_proba(model, {"v": 0.6}), model.predict_proba_one({"v": 0.6})
    >>> all(abs(ours[k] - rivers[k]) < 1e-15 for k in rivers), round(ours["a"], 4)
    (True, 0.0046)
    """
    jll = model.joint_log_likelihood(x)
    if not jll:
        return {}
    values = list(jll.values())
    top = max(values)
    if not all(math.isfinite(v) for v in values):
        return BaseNB.predict_proba_one(model, x)  # river's, not an override that would come back here
    ties = values.count(top)
    rest = sum(math.exp(v - top) for v in values if v != top)
    lse = math.log1p(rest / ties if rest else 0.0) + math.log(ties) + top
    return {label: math.exp(ll - lse) for label, ll in jll.items()}


class GaussianNB(naive_bayes.GaussianNB):
    """river's Gaussian naive Bayes whose probabilities come from :func:`naive_bayes_proba`: river's
    numbers to rounding, in well under half the time (the served ``gnb``).

    >>> model = make_model("gnb")
    >>> for v, y in [(0.0, "a"), (0.2, "a"), (1.0, "b"), (1.3, "b")]:
    ...     model.learn_one({"v": v}, y)
    >>> reference = naive_bayes.GaussianNB()
    >>> for v, y in [(0.0, "a"), (0.2, "a"), (1.0, "b"), (1.3, "b")]:
    ...     reference.learn_one({"v": v}, y)
    >>> ours, rivers = model.predict_proba_one({"v": 0.5}), reference.predict_proba_one({"v": 0.5})
    >>> all(abs(ours[k] - rivers[k]) < 1e-15 for k in rivers)
    True
    """

    def predict_proba_one(self, x: Features) -> dict[ClassLabel, float]:
        return naive_bayes_proba(self, x)

    @staticmethod
    def _make_gaussian() -> proba.Gaussian:
        # river's, whose sampling generator is seeded from the OS: state that differs from run to run
        # although no prediction uses it. Seeded, the same stream gives the same model, byte for byte.
        gaussian = naive_bayes.GaussianNB._make_gaussian()
        gaussian.seed, gaussian._rng = 0, random.Random(0)
        return gaussian


def _gnb(seed: int | None) -> base.Classifier:
    return GaussianNB()


def _arf(seed: int | None) -> base.Classifier:
    return forest.ARFClassifier(n_models=10, seed=seed)


#: Factories by name; each takes a seed (ignored by deterministic models).
MODELS: dict[str, Callable[[int | None], base.Classifier]] = {
    "logreg": _logreg,
    "logreg_ovr": _logreg_ovr,
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
    ValueError: unknown model 'svm'; choose one of: arf, gnb, hat, ht, logreg, logreg_ovr
    """
    try:
        factory = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(sorted(MODELS))}") from None
    return factory(seed)


def binary_only(model: base.Classifier) -> bool:
    """Whether ``model`` learns two classes only, by river's own flag (``_multiclass``), looking through
    pipelines and the drift arms to the classifier that learns.

    Only river's estimators are judged: another classifier that never sets the flag inherits river's
    ``False`` default without meaning it, so it is trusted with any label.

    >>> from river import naive_bayes
    >>> class Custom(base.Classifier):
    ...     def learn_one(self, x, y): pass
    ...     def predict_proba_one(self, x): return {}
    >>> binary_only(Custom()), binary_only(naive_bayes.GaussianNB())
    (False, False)
    """
    learner = _learning_classifier(model)
    return type(learner).__module__.startswith("river.") and not learner._multiclass


def _learning_classifier(model: base.Classifier) -> base.Classifier:
    template = getattr(model, "drift_template", None)  # activestream.drift.adaptive's arms
    if template is not None:
        return _learning_classifier(template)
    if isinstance(model, compose.Pipeline):
        return _learning_classifier(list(model.steps.values())[-1])
    return model


class BinaryLabelError(ValueError):
    """A binary model was given a label other than ``True``/``False``/``1``/``0``."""


def check_binary_label(y: ClassLabel) -> None:
    """Refuse, for a binary model, a label it would silently read as ``True`` (or fail on, deep in river).

    >>> check_binary_label(True); check_binary_label(0)
    >>> check_binary_label("down")
    Traceback (most recent call last):
    ...
    activestream.models.BinaryLabelError: the model is binary (labels true/false or 1/0) and got 'down'; ...
    """
    if isinstance(y, str) or y not in (False, True):
        raise BinaryLabelError(
            f"the model is binary (labels true/false or 1/0) and got {y!r}; "
            "use a multi-class model such as logreg_ovr, hat or gnb"
        )

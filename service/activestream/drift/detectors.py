"""River drift detectors by name, for configuration files and command lines.

Two families, as river 0.26 splits them:

- **Real-valued** detectors (``river.drift``) test a change in the mean or distribution of any number:
  ``"adwin"`` (ADWIN, Bifet & Gavaldà 2007; the default), ``"page_hinkley"`` (Page 1954) and
  ``"kswin"`` (Kolmogorov–Smirnov windowing, Raab et al. 2020). They are **two-sided** (ADWIN and KSWIN
  always; Page–Hinkley in its default ``mode="both"``): on an error stream they also fire when the error
  *falls*, e.g. while a young model is still learning. They have **no warning zone**.
- **Binary error** detectors (``river.drift.binary``) watch a 0/1 error stream for a *rise* in the error
  rate: ``"ddm"`` (Gama et al. 2004), ``"eddm"`` (Baena-García et al. 2006), ``"hddm_a"`` and ``"hddm_w"``
  (Frías-Blanco et al. 2015; one-sided unless ``two_sided_test=True``) and ``"fhddm"`` (Pesaranghader &
  Viktor 2016).

River 0.26.1's FHDDM, unlike its docstring (1 = error), signals a *fall* of its input's mean (it
follows MOA, where the input is 1 for a correct prediction). :func:`error_signal` gives every detector
the 0/1 value that makes it fire when the error rate rises: the error itself, or for FHDDM the
correctness.

KSWIN compares two samples with the Kolmogorov–Smirnov test; on a two-valued 0/1 stream it only sees
large changes of the error rate (in ``benchmarks/drift_suite.py`` it catches STAGGER's drifts at once but
misses most of SEA's and Agrawal's); it suits real-valued inputs such as the label-free scores.

A **warning zone** (``warning_detected``: the statistic is past a looser threshold but not yet past the
drift one) lets a background model start learning the new concept before the drift is confirmed. DDM,
EDDM, HDDM_A and HDDM_W have one. FHDDM derives from river's warning-capable base class but never sets a
warning, so :func:`has_warning_zone` says ``False`` for it; neither do the real-valued detectors.

Which one? ADWIN is the default: no threshold to tune, and no false alarm in ``benchmarks/drift_suite.py``.
There, with a Hoeffding tree at a 10% budget, HDDM_A (and DDM) found STAGGER's drifts sooner and, thanks
to the background model, recovered better (90 versus 85 points after the drifts), with no (respectively
three) false alarms, while EDDM raised thirty: ``detector="hddm_a"`` is worth trying for models that a
reset sets far back.

>>> detector = make_detector("ddm", warm_start=50)
>>> detector
DDM (
  warm_start=50
  warning_threshold=2.
  drift_threshold=3.
)
>>> has_warning_zone(detector), is_one_sided(detector)
(True, True)
>>> has_warning_zone(make_detector("adwin")), is_one_sided(make_detector("adwin"))
(False, False)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from river import base, drift
from river.drift import binary

__all__ = [
    "DEFAULT_DETECTOR",
    "DETECTORS",
    "WARNING_ZONE",
    "detector_name",
    "error_signal",
    "has_warning_zone",
    "is_one_sided",
    "make_detector",
]

#: The detector used when none is named: distribution-free, no parameter to tune for a 0/1 stream.
DEFAULT_DETECTOR: Final = "adwin"

#: Detector classes by registry name.
DETECTORS: Final[dict[str, type[base.DriftDetector] | type[base.BinaryDriftDetector]]] = {
    "adwin": drift.ADWIN,
    "page_hinkley": drift.PageHinkley,
    "kswin": drift.KSWIN,
    "ddm": binary.DDM,
    "eddm": binary.EDDM,
    "hddm_a": binary.HDDMA,
    "hddm_w": binary.HDDMW,
    "fhddm": binary.FHDDM,
}

#: Names of the detectors that raise ``warning_detected`` before a drift (see the module docstring).
WARNING_ZONE: Final = frozenset({"ddm", "eddm", "hddm_a", "hddm_w"})

# Only KSWIN draws random numbers (its reference sample); the others are deterministic.
_SEEDED: Final[dict[str, Callable[[int | None], dict[str, Any]]]] = {"kswin": lambda seed: {"seed": seed}}


def make_detector(name: str = DEFAULT_DETECTOR, seed: int | None = None, **params: Any) -> base.Base:
    """A fresh river drift detector by registry name.

    Parameters
    ----------
    name
        One of :data:`DETECTORS`: ``"adwin"`` (default), ``"page_hinkley"``, ``"kswin"``, ``"ddm"``,
        ``"eddm"``, ``"hddm_a"``, ``"hddm_w"``, ``"fhddm"``.
    seed
        Seeds KSWIN's random reference sample (ignored by the deterministic detectors).
    params
        Passed to the detector's constructor, e.g. ``delta=0.002`` for ADWIN.

    Examples
    --------
    >>> make_detector("adwin", delta=0.01).delta
    0.01
    >>> make_detector("kswin", seed=3).seed
    3
    >>> make_detector("cusum")
    Traceback (most recent call last):
    ...
    ValueError: unknown drift detector 'cusum'; choose one of: adwin, ddm, eddm, fhddm, ...
    >>> make_detector("ddm", delta=0.1)
    Traceback (most recent call last):
    ...
    ValueError: bad parameters for drift detector 'ddm': ...

    """
    try:
        cls = DETECTORS[name]
    except KeyError:
        raise ValueError(
            f"unknown drift detector {name!r}; choose one of: {', '.join(sorted(DETECTORS))}"
        ) from None
    kwargs = {**(_SEEDED[name](seed) if name in _SEEDED else {}), **params}
    try:
        return cls(**kwargs)
    except TypeError as error:
        raise ValueError(f"bad parameters for drift detector {name!r}: {error}") from None


def detector_name(detector: base.Base) -> str:
    """The registry name of a detector instance, or its class name if it is not registered.

    >>> detector_name(make_detector("hddm_w"))
    'hddm_w'
    """
    for name, cls in DETECTORS.items():
        if type(detector) is cls:
            return name
    return type(detector).__name__


def has_warning_zone(detector: base.Base) -> bool:
    """Whether ``detector`` ever raises ``warning_detected`` before it signals a drift.

    Registered detectors are looked up in :data:`WARNING_ZONE` (FHDDM has the attribute but never sets
    it); unregistered ones are trusted if they derive from a river warning-capable base class.

    >>> has_warning_zone(make_detector("fhddm")), has_warning_zone(make_detector("eddm"))
    (False, True)
    """
    name = detector_name(detector)
    if name in DETECTORS:
        return name in WARNING_ZONE
    return isinstance(detector, base.DriftAndWarningDetector | base.BinaryDriftAndWarningDetector)


def is_one_sided(detector: base.Base) -> bool:
    """Whether ``detector`` only fires when its input *rises* (an error rate going up).

    Two-sided detectors also fire when a model's error falls; a learner reacting to those would throw a
    model away for getting better, so :class:`~activestream.drift.arms.ActiveArm` checks the direction
    of the change when this is ``False``.

    >>> is_one_sided(make_detector("hddm_a")), is_one_sided(make_detector("hddm_a", two_sided_test=True))
    (True, False)
    >>> is_one_sided(make_detector("page_hinkley", mode="up"))
    True
    """
    if isinstance(detector, base.BinaryDriftDetector):
        return not getattr(detector, "two_sided_test", False)
    return isinstance(detector, drift.PageHinkley) and detector.mode == "up"


def error_signal(detector: base.Base, error: int) -> int:
    """The value to feed ``detector`` for one prediction's 0/1 ``error`` so that it fires on a rising error.

    The error itself, except for river's FHDDM, which signals a fall of its input (see the module
    docstring) and so must see the correctness ``1 − error``.

    >>> error_signal(make_detector("ddm"), 1), error_signal(make_detector("fhddm"), 1)
    (1, 0)
    """
    return 1 - error if isinstance(detector, binary.FHDDM) else error

"""Query by committee: ask for labels where a committee of models disagrees.

A committee of classifiers learns the same labeled examples as the served model; an event on which
the members disagree lies in a region the version space has not settled yet, so its label is
informative (Seung, Opper & Sompolinsky 1992, *Query by committee*, COLT). Diversity comes from online
bagging (Oza & Russell 2001, *Online bagging and boosting*, AISTATS): each member learns each example
``k ~ Poisson(1)`` times, the streaming limit of a bootstrap sample.

The measures keep their committee inside and ignore the served model's probabilities, except that a
cold start (served model or committee without two classes) gives ``1.0``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from river.base import Classifier

from activestream.models import GaussianNB
from activestream.score.base import Measure
from activestream.score.uncertainty import is_cold_start, normalise, shannon
from activestream.types import ClassLabel, Features, Proba

__all__ = ["Committee", "KLConsensus", "VoteEntropy"]


class Committee:
    """A committee of river classifiers that learn the same labeled stream.

    Build it from given members (each learns every example once; diversity must come from the members
    themselves), or with ``Committee.bagging`` from clones of one base learner that learn each example
    ``k ~ Poisson(1)`` times (online bagging, Oza & Russell 2001).

    Parameters
    ----------
    members
        The classifiers; at least two.
    bootstrap
        Whether each member learns each example ``k ~ Poisson(1)`` times instead of once.
    seed
        Seed of the generator that draws the Poisson counts.

    Examples
    --------
    >>> from river import datasets, naive_bayes
    >>> committee = Committee.bagging(naive_bayes.GaussianNB(), size=3, seed=1)
    >>> for x, y in datasets.synth.SEA(seed=1).take(50):
    ...     committee.learn_one(x, y)
    >>> sorted(committee.classes)
    [False, True]
    >>> committee.opinions({0: 5.0, 1: 5.0, 2: 5.0}).shape
    (3, 2)

    """

    def __init__(
        self, members: Sequence[Classifier], *, bootstrap: bool = False, seed: int | None = None
    ) -> None:
        if len(members) < 2:
            raise ValueError(f"a committee needs at least 2 members, got {len(members)}")
        self.members = list(members)
        self.bootstrap = bootstrap
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        # A dict keeps the classes in order of first appearance: sets of str labels iterate in a
        # per-process hash order, which would make float sums differ between runs.
        self.classes: dict[ClassLabel, None] = {}

    @classmethod
    def bagging(cls, learner: Classifier, size: int = 5, seed: int | None = None) -> Committee:
        """A committee of ``size`` untrained clones of ``learner``, trained by online bagging.

        Examples
        --------
        >>> from river import naive_bayes
        >>> len(Committee.bagging(naive_bayes.GaussianNB(), size=4, seed=0).members)
        4

        """
        return cls([learner.clone() for _ in range(size)], bootstrap=True, seed=seed)

    def learn_one(self, x: Features, y: ClassLabel) -> None:
        """Let every member learn ``(x, y)``: once, or ``Poisson(1)`` times when bootstrapping."""
        self.classes.setdefault(y, None)
        counts = self._rng.poisson(1.0, len(self.members)) if self.bootstrap else [1] * len(self.members)
        for member, count in zip(self.members, counts, strict=True):
            for _ in range(int(count)):
                member.learn_one(x, y)

    def opinions(self, x: Features) -> np.ndarray:
        """Members' class distributions for ``x``, one row per member that has an opinion.

        Columns follow ``labels(x)``: the classes the committee has learned, then any other class a
        member predicts. Members without an opinion yet (empty or all-zero probabilities, e.g. a
        bagged member that has drawn ``k = 0`` for every example so far) are left out.
        """
        rows = [_member_distribution(member, x) for member in self.members]
        rows = [row for row in rows if row]
        labels = dict(self.classes)
        for row in rows:
            labels.update(dict.fromkeys(row))
        return np.array([[row.get(label, 0.0) for label in labels] for row in rows]).reshape(
            len(rows), len(labels)
        )


def _member_distribution(member: Classifier, x: Features) -> dict[ClassLabel, float]:
    # Some river classifiers only predict labels; their vote then counts as a one-hot distribution.
    try:
        return normalise(member.predict_proba_one(x))
    except NotImplementedError:
        label = member.predict_one(x)
        return {} if label is None else {label: 1.0}


class _CommitteeMeasure(Measure):
    """A measure of disagreement within a committee that learns alongside the served model.

    Parameters
    ----------
    committee
        The committee to consult; by default one is built by online bagging of ``base``.
    base
        Base learner to bag when no committee is given (default ``models.GaussianNB()``: river's, with
        its probabilities normalised on floats).
    size
        Number of bagged members.
    seed
        Seed of the bagging.
    """

    def __init__(
        self,
        committee: Committee | None = None,
        *,
        base: Classifier | None = None,
        size: int = 5,
        seed: int | None = None,
    ) -> None:
        if committee is not None and base is not None:
            raise ValueError("give either a committee or a base learner to bag, not both")
        if committee is None:
            learner = GaussianNB() if base is None else base
            committee = Committee.bagging(learner, size=size, seed=seed)
        self.committee = committee

    def learn_one(self, x: Features, y: ClassLabel) -> None:
        """Let the committee learn the labeled example the served model learns."""
        self.committee.learn_one(x, y)

    def is_cold(self, x: Features, proba: Proba) -> bool:
        """Cold start: the served model or the committee knows fewer than two classes, or fewer than two
        members have an opinion on ``x``."""
        return self._opinions_unless_cold(x, proba) is None

    def _opinions_unless_cold(self, x: Features, proba: Proba) -> np.ndarray | None:
        if is_cold_start(proba) or len(self.committee.classes) < 2:
            return None
        opinions = self.committee.opinions(x)
        return None if len(opinions) < 2 else opinions

    def score(self, x: Features, proba: Proba, model: Any = None) -> float:
        """Disagreement of the committee on ``x`` in ``[0, 1]``; ``1.0`` on cold start."""
        opinions = self._opinions_unless_cold(x, proba)
        if opinions is None:
            return 1.0
        n_members, n_classes = opinions.shape
        # Both measures are bounded by log(min(M, C)): M members cannot spread over more than M
        # classes, and no distribution over C classes has entropy above log C.
        return min(1.0, max(0.0, self._disagreement(opinions) / math.log(min(n_members, n_classes))))

    def _disagreement(self, opinions: np.ndarray) -> float:
        raise NotImplementedError


class VoteEntropy(_CommitteeMeasure):
    r"""Vote entropy of the committee, normalised to ``[0, 1]``.

    $$\operatorname{VE}(x) = -\frac{1}{\log \min(M, C)} \sum_y \frac{V(y)}{M} \log \frac{V(y)}{M}$$

    where $V(y)$ is the number of the $M$ members whose most probable class is $y$. Source: Dagan &
    Engelson (1995), *Committee-based sampling for training probabilistic classifiers*, ICML.

    Parameters: see ``_CommitteeMeasure``.

    Examples
    --------
    >>> from river import datasets
    >>> measure = VoteEntropy(size=5, seed=42)
    >>> measure.score({0: 1.0, 1: 2.0, 2: 3.0}, {True: 0.6, False: 0.4})  # committee untrained
    1.0
    >>> for x, y in datasets.synth.SEA(seed=1).take(200):
    ...     measure.learn_one(x, y)
    >>> 0.0 <= measure.score({0: 1.0, 1: 2.0, 2: 3.0}, {True: 0.6, False: 0.4}) <= 1.0
    True

    """

    name: ClassVar[str] = "qbc_vote_entropy"

    def _disagreement(self, opinions: np.ndarray) -> float:
        # argmax breaks ties towards the first column, i.e. the class learned first: deterministic.
        votes = np.bincount(np.argmax(opinions, axis=1), minlength=opinions.shape[1])
        return shannon(votes / votes.sum())


class KLConsensus(_CommitteeMeasure):
    r"""Mean Kullback-Leibler divergence of each member to the consensus, normalised to ``[0, 1]``.

    $$\operatorname{KL}(x) = \frac{1}{\log \min(M, C)} \cdot \frac{1}{M} \sum_{m=1}^{M}
    \sum_y P_m(y|x) \log \frac{P_m(y|x)}{P_{\mathcal{C}}(y|x)}, \quad
    P_{\mathcal{C}} = \frac{1}{M} \sum_m P_m$$

    The unnormalised value is the generalised Jensen-Shannon divergence of the members, which never
    exceeds $\log M$ nor $\log C$; dividing by the smaller bound reaches ``1`` when every member is
    certain of a different class. Source: McCallum & Nigam (1998), *Employing EM and pool-based active
    learning for text classification*, ICML.

    Parameters: see ``_CommitteeMeasure``.

    Examples
    --------
    >>> from river import datasets
    >>> measure = KLConsensus(size=5, seed=42)
    >>> for x, y in datasets.synth.SEA(seed=1).take(200):
    ...     measure.learn_one(x, y)
    >>> 0.0 <= measure.score({0: 1.0, 1: 2.0, 2: 3.0}, {True: 0.6, False: 0.4}) <= 1.0
    True

    """

    name: ClassVar[str] = "qbc_kl"

    def _disagreement(self, opinions: np.ndarray) -> float:
        consensus = opinions.mean(axis=0)
        # 0 log 0 = 0: where a member gives 0 the ratio is forced to 1. Where it gives p > 0 the
        # consensus is at least p / M > 0, so the division is safe.
        ratio = np.where(opinions > 0.0, opinions / np.where(consensus > 0.0, consensus, 1.0), 1.0)
        return float((opinions * np.log(ratio)).sum(axis=1).mean())

"""An online choice tried and not kept: Active Learning by Learning between the default and random sampling.

Active Learning by Learning (ALBL; Hsu & Lin, "Active Learning by Learning", AAAI 2015) treats query
strategies as the experts of the contextual bandit EXP4.P (Beygelzimer, Langford, Li, Reyzin & Schapire,
"Contextual Bandit Algorithms with Supervised Learning Guarantees", AISTATS 2011), rewarded after each
query by an importance-weighted accuracy (IW-ACC) of the model. Here, on a stream, with two experts: the
default's uncertainty decision (``confidence_split``'s informativeness part on the margin) and random
sampling at the budget ``B``. ``ConfidenceSplit`` already is a fixed mixture of the two (its random share
``v = 0.1``); ALBL learns that share online: ``v = π_r``, the bandit's probability of the random arm.
See :class:`ActiveLearningByLearning` for what is taken from the paper and what is adapted, and why.

Protocol: ``field.py``'s runner (prequential, every asked label charged, labels ``delay`` events late),
every stream × learner of the field grid, budgets 5 and 10%, delays 0, 500 and 2,000, against random
sampling and ``activestream default`` on the same seed (``error_proportional.py``'s protocol and report,
reused), and against the bandit's starting point held fixed (``confidence_split[v=0.5]``: what the bandit
adds over its own prior). Writes ``results/albl.md``::

    PYTHONPATH=service python benchmarks/albl.py --seeds 1,2,3
"""

from __future__ import annotations

import collections
import math
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from activestream.decide import ConfidenceSplit
from activestream.learner import DEFAULT_MEASURE, ActiveLearner, Decision
from activestream.models import make_model
from error_proportional import BASELINES, records_from_cli, report, write
from field import METHODS, Method, Record, register
from label_efficiency import Setting, fix_string_hashes

#: EXP4.P's minimal probability (libact's default for ALBL), here a floor on each expert's share.
P_MIN = 0.05
#: EXP4.P's confidence parameter (libact's default) and its horizon in rounds (asks): one pacing window.
DELTA, HORIZON = 1.0, 1000
#: Forgetting of the importance-weighted accuracy, in labels.
MEMORY = 100
ARMS = ("uncertainty", "random")
KEY = "albl[uncertainty,random]"
#: The bandit's starting mixture, held fixed.
FIXED = "activestream margin/confidence_split[v=0.5]"


class ActiveLearningByLearning(ActiveLearner):
    """EXP4.P over two experts, the default's uncertainty decision and random sampling at ``B``.

    Per event, the bandit's shares ``π = (π_u, π_r)`` give the expert that decides: with probability
    ``π_r`` random sampling (ask with probability ``B``), else ``confidence_split``'s uncertainty part
    (ask when the margin confidence is below its threshold ``τ`` and the budget has room). That is
    ``ConfidenceSplit`` with its random share ``v`` set to ``π_r`` before each event: the same threshold
    walk, the same budget estimator and pacing (the random arm's asks counted, the uncertainty part
    spending what they leave), so the budget stays at ``B`` whatever ``π``, and each ask has the known
    probability ``p = π_r·B + π_u·ξ_u`` (``ξ_u`` = 1 when the uncertainty part would ask), returned as
    ``Decision.ask_proba``. The default is this learner with ``π_r`` frozen at 0.1.

    **Per event, not per block.** A block would freeze the uncertainty part's threshold while the random
    arm holds it and lets the budget estimator run up credit or debt that the next block spends in a burst;
    and the field's streams (1,250 to 8,000 events) would give a bandit only a few dozen blocks. Per event,
    both arms share one budget and threshold, and the bandit gets one round per label.

    **What is taken from ALBL / EXP4.P.** Experts give advice on the actions, the action is drawn from the
    weighted mixture of the advice, and the reward of the chosen action is credited to each expert in
    proportion to its advice over the action's probability: ``ŷ_i = ξ_i·r/p``, ``v̂_i = ξ_i/p``,
    ``w_i ← w_i·exp((p_min/2)·(ŷ_i + v̂_i·√(ln(N/δ)/(K·T))))`` (EXP4.P, Algorithm 1 of Beygelzimer et al.;
    ``p_min = 0.05`` and ``δ = 1`` as in libact's ALBL, N = 2 experts; weights start equal, ``w_i = 1``).
    The reward is ALBL's IW-ACC, as libact's documentation of ALBL writes it,
    ``IW-ACC(f, τ) = (1/(nT)) Σ_{t≤τ} W_t·[y_{i_t} = f(x_{i_t})]`` (``n`` points in the pool, ``T`` the
    query budget, ``W_t`` the inverse of the probability with which the ``t``-th query was drawn): the
    accuracy of the current model over the labels asked, each weighted by the inverse of its ask
    probability. A random expert's advice in the pool is the uniform distribution over it; here it is "ask
    with probability ``B``".

    **What is adapted, and why.**

    - *Actions and rounds.* In the pool every round is a query and the actions are the unlabelled points;
      on a stream the actions of an event are ask and skip. A skip brings no label, so no reward: a round is
      an asked event, rewarded when its label arrives (``delay`` events later), with the advice and the
      ask probability of the moment it was asked (``ξ_u ∈ {0, 1}``, ``ξ_r = B``). Both experts put about
      the same mass on "ask" over a stretch of events (both are paced to ``B``; the uncertainty part would
      ask 4.7–5.1% of events at ``B`` = 5% on seed 2), as the pool's experts each put mass 1 on the pool,
      so neither gains much credit by asking more. ``K = 2`` (ask, skip); ``T = HORIZON`` asks (one pacing
      window: a stream has no end, hence no query budget).
    - *Where ``p_min`` goes.* EXP4.P mixes ``p_min`` of uniform exploration into the action distribution;
      on ask/skip that would ask every event with probability at least ``p_min``, over the budget. The
      floor is put on the experts' shares instead, ``π_i = (1 − N·p_min)·w_i/W + p_min``: every event keeps
      an ask probability of at least ``p_min·B`` through the random arm, so every label has a finite
      weight ``1/p`` in the estimate, as ``p_min`` gives every pool point in ALBL.
    - *IW-ACC on a stream.* The paper scores the queried points with the model trained on them (one
      prediction per past query after each query, ``O(T²)``). Here each arriving label is scored by the
      model just before it learns it (prequential: a test, not a training accuracy, one prediction per
      label) and the weighted hits are averaged with forgetting over ``MEMORY`` labels (Hájek:
      ``Σ W·hit / Σ W``), so the reward follows the current model under drift rather than the average
      since the start. The reward of a round is this estimate after its label has been scored and learned,
      in ``[0, 1]`` as EXP4.P requires.

    >>> from river import linear_model
    >>> learner = ActiveLearningByLearning(linear_model.LogisticRegression(), budget=0.5, seed=1)
    >>> decisions = [learner.decide({"x": float(i % 3)}) for i in range(400)]
    >>> 0.4 < sum(d.ask for d in decisions) / len(decisions) < 0.6  # cold model: the budget is kept
    True
    >>> all(0 < d.ask_proba <= 1 for d in decisions)  # every decision has its ask probability
    True
    """

    def __init__(
        self, classifier: Any, budget: float, seed: int, stats: dict[str, Any] | None = None
    ) -> None:
        self._split = ConfidenceSplit(budget, v=0.5, seed=seed)
        super().__init__(classifier, measure=DEFAULT_MEASURE, policy=self._split, budget=budget, seed=seed)
        self._log_w = [0.0] * len(ARMS)
        self._bonus = math.sqrt(math.log(len(ARMS) / DELTA) / (2 * HORIZON))
        self._hits = self._weights = 0.0  # forgotten Σ W·hit and Σ W of the arriving labels
        self._memo: dict[int, tuple[float, float]] = {}  # id(x) of an asked event -> (ξ_u, ask probability)
        self.stats = stats if stats is not None else {}
        self.shares = self._mixture()
        self._events, self._share_sum = 0, 0.0

    def _mixture(self) -> tuple[float, float]:
        """``(π_u, π_r)``: the probability that each expert decides the next event."""
        top = max(self._log_w)
        w = [math.exp(lw - top) for lw in self._log_w]
        return tuple((1 - len(ARMS) * P_MIN) * wi / sum(w) + P_MIN for wi in w)  # type: ignore[return-value]

    def decide(self, x: dict[str, Any]) -> Decision:
        pi_r = self.shares[1]
        self._split.v = pi_r
        decision = super().decide(x)
        self._events, self._share_sum = self._events + 1, self._share_sum + pi_r
        self.stats["random_share_end"], self.stats["random_share_mean"] = pi_r, self._share_sum / self._events
        if decision.ask:  # ξ_u: the uncertainty part would have asked (qualifies and room)
            xi_u = float(decision.ask_proba is not None and decision.ask_proba > pi_r * self.budget + 1e-12)
            self._memo[id(x)] = (xi_u, decision.ask_proba)
        return decision

    def learn_one(self, x: dict[str, Any], y: Any, **kwargs: Any) -> None:
        asked = self._memo.pop(id(x), None)
        if asked is not None:
            xi_u, p = asked
            hit = float(self.present(dict(self.classifier.predict_proba_one(x)))[0] == y)
            keep = 1 - 1 / MEMORY
            self._hits = self._hits * keep + hit / p
            self._weights = self._weights * keep + 1 / p
        super().learn_one(x, y, **kwargs)
        if asked is not None:
            reward = self._hits / self._weights
            for i, xi in enumerate((xi_u, self.budget)):
                self._log_w[i] += P_MIN / 2 * (xi * reward / p + xi / p * self._bonus)
            self.shares = self._mixture()


def build(s: Setting) -> tuple[Any, dict[str, Any]]:
    stats: dict[str, Any] = {}  # filled during the run: the Record carries this dict
    return ActiveLearningByLearning(make_model(s.model, s.seed), s.budget, s.seed, stats), stats


METHODS[KEY] = Method(KEY, "activestream", build)


def shares(records: list[tuple[int, Record]]) -> str:
    """The random arm's share at the end of the stream and over it, mean over runs, per budget × delay."""
    by: dict[tuple[float, int], list[tuple[float, float]]] = collections.defaultdict(list)
    for _, r in records:
        if r.method == KEY and "random_share_end" in r.info:
            by[(r.budget, r.delay)].append((r.info["random_share_end"], r.info["random_share_mean"]))
    lines = [
        "| budget | delay | π_r at the end: mean (min–max) over runs | π_r over the stream: mean |",
        "|---|---|---|---|",
    ]
    for (budget, delay), v in sorted(by.items()):
        end = [e for e, _ in v]
        lines.append(
            f"| {budget:.0%} | {delay} | {statistics.fmean(end):.2f} ({min(end):.2f}–{max(end):.2f}) | "
            f"{statistics.fmean(m for _, m in v):.2f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args, records, load = records_from_cli(__doc__, argv, lambda _: [*BASELINES, register(FIXED).key, KEY])
    body = (
        f"{report(records)}\n\n"
        "What the bandit chose: the share of events decided by the random arm (π_r; the default's is 0.1, "
        f"the bandit starts at 0.5 and is kept in [{P_MIN}, {1 - P_MIN}]):\n\n{shares(records)}"
    )
    title = "Active Learning by Learning between the default and random sampling (tried, not kept)"
    write(args.out / "albl.md", title, f"python benchmarks/albl.py --seeds {args.seeds}", body, load)
    return 0


if __name__ == "__main__":
    fix_string_hashes()
    sys.exit(main())

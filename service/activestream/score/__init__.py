"""Informativeness measures: how much would a label for this event teach the model?"""

from activestream.score.base import Measure
from activestream.score.registry import MEASURES, make_measure

__all__ = ["MEASURES", "Measure", "make_measure"]

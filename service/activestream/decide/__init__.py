"""Budgets and threshold policies: turn an informativeness score into ask or discard."""

"""Informativeness measures: how much would a label for this event teach the model?"""

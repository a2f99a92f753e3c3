"""Baseline recipes: chance (dummy), clinical-only scikit-learn models and geometric baselines.

Every module here is scanned for ``@component`` factories when the models registry loads, so
modules must import cheaply (heavy imports inside functions).
"""

"""Figures of the report (matplotlib, Agg): pure functions of run results returning figures."""

"""Figures and reports (matplotlib, Agg backend; files written atomically)."""

from halex.plotting.figures import plot_relaxation, save_figure

__all__ = ["save_figure", "plot_relaxation"]

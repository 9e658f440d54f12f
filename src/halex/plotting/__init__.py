"""Figures and reports (matplotlib, Agg backend; files written atomically)."""

from halex.plotting.figures import save_figure, plot_relaxation

__all__ = ["save_figure", "plot_relaxation"]

"""Plots saved to files: waterfalls, delay spectra, convergence, Fisher correlations,
traces and corner plots. Uses matplotlib's non-interactive Agg backend."""

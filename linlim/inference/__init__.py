"""Inference: optimisers (Gauss-Newton, Levenberg-Marquardt, L-BFGS, Adam), Fisher
matrices, Hamiltonian Monte Carlo and MCMC diagnostics."""

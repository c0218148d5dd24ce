"""Inference: optimisers (Gauss-Newton, Levenberg-Marquardt, L-BFGS, Adam), Fisher
matrices, Hamiltonian Monte Carlo and MCMC diagnostics.

All of them consume the log-posterior protocol of :class:`linlim.likelihood.LogPosterior`
(``size``, ``xp``, ``value``, ``grad``, ``value_and_grad``, ``gn_product``,
``linearize_gn``), so they run unchanged on a Dask-distributed posterior.
"""

from ..operators.cg import CGResult, conjugate_gradient, forcing_term, null_space_projector
from .adam import adam
from .checkpoint import load_checkpoint, save_checkpoint
from .diagnostics import (
    Summary,
    autocorrelation,
    autocovariance,
    ebfmi,
    ess_bulk,
    ess_mean,
    ess_quantile,
    ess_sd,
    ess_tail,
    integrated_autocorr_time,
    mcse_mean,
    mcse_quantile,
    mcse_sd,
    rhat,
    summary,
    to_inference_data,
)
from .emcee_bridge import EmceeResult, emcee_log_prob, emcee_sample
from .fisher import (
    FisherEigen,
    LowRankFisher,
    correlation_matrix,
    fisher_block_diagonal,
    fisher_covariance,
    fisher_diagonal,
    fisher_eigen,
    fisher_marginal_block,
    fisher_matrix,
    fisher_operator,
    jacobian_columns,
    low_rank_fisher,
    marginal_errors,
    operator_fisher,
    operator_jacobian,
)
from .gauss_newton import InnerSolver, gauss_newton, levenberg_marquardt, newton_loop
from .hmc import HMC, DivergenceWarning, HMCResult, load_result, sample
from .lbfgs import lbfgs
from .lowrank import (
    BlockFactor,
    DenseFactor,
    DiagonalFactor,
    FourierFactor,
    LowRankPosterior,
    lanczos_eigsh,
    low_rank_laplace,
    prior_factor,
    randomized_eigsh,
)
from .metric import (
    DenseMetric,
    DiagonalMetric,
    IdentityMetric,
    LaplaceMetric,
    LowRankMetric,
    Metric,
    fisher_metric,
)
from .optimize import OptimizeResult
from .preconditioners import (
    BlockJacobiPreconditioner,
    JacobiPreconditioner,
    LowRankPreconditioner,
    Preconditioner,
    PriorPreconditioner,
    RebuiltPreconditioner,
    SchurPreconditioner,
    make_preconditioner,
)

__all__ = [
    "gauss_newton", "levenberg_marquardt", "lbfgs", "adam", "conjugate_gradient",
    "CGResult", "forcing_term", "null_space_projector", "newton_loop", "InnerSolver",
    "Preconditioner", "PriorPreconditioner", "LowRankPreconditioner", "JacobiPreconditioner",
    "BlockJacobiPreconditioner", "RebuiltPreconditioner", "make_preconditioner",
    "SchurPreconditioner",
    "LowRankPosterior", "low_rank_laplace", "prior_factor", "lanczos_eigsh",
    "randomized_eigsh", "DiagonalFactor", "DenseFactor", "FourierFactor", "BlockFactor",
    "fisher_marginal_block", "operator_fisher", "operator_jacobian", "LaplaceMetric",
    "OptimizeResult", "save_checkpoint", "load_checkpoint",
    "fisher_matrix", "fisher_block_diagonal", "fisher_operator", "fisher_diagonal",
    "jacobian_columns", "low_rank_fisher", "LowRankFisher", "fisher_covariance",
    "marginal_errors", "correlation_matrix", "fisher_eigen", "FisherEigen",
    "HMC", "HMCResult", "sample", "load_result", "DivergenceWarning",
    "Metric", "IdentityMetric", "DiagonalMetric", "DenseMetric", "LowRankMetric",
    "fisher_metric",
    "rhat", "ess_bulk", "ess_tail", "ess_mean", "ess_sd", "ess_quantile", "mcse_mean",
    "mcse_sd", "mcse_quantile", "autocovariance", "autocorrelation",
    "integrated_autocorr_time", "ebfmi", "Summary", "summary", "to_inference_data",
    "emcee_sample", "EmceeResult", "emcee_log_prob",
]

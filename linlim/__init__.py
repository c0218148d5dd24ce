"""linlim: Bayesian forward modelling of 21 cm line-intensity-mapping interferometer data.

Operators with hand-derived adjoints and Jacobian-vector products, on NumPy + numba (CPU)
or CuPy (GPU), switched by one flag (:func:`set_backend`).

Subpackages: :mod:`~linlim.operators` (the algebra), :mod:`~linlim.telescope`,
:mod:`~linlim.sky`, :mod:`~linlim.beam`, :mod:`~linlim.rime` (the forward model),
:mod:`~linlim.calibration`, :mod:`~linlim.inference` (optimisers, Fisher, HMC),
:mod:`~linlim.filters`, :mod:`~linlim.io`, :mod:`~linlim.plotting`,
:mod:`~linlim.pipelines` (the jobs behind the ``linlim`` command) and
:mod:`~linlim.distributed` (Dask, optional).
"""

from . import (
    beam,
    calibration,
    filters,
    inference,
    operators,
    rime,
    sky,
    telescope,
    testing,
)
from .backend import get_backend, get_xp, set_backend, to_numpy, use_backend
from .beam import AiryBeam, BasisBeam, GaussianBeam, PixelBeam
from .calibration import dd_gains, di_gains, stefcal
from .errors import (
    BackendError,
    BackendMismatchError,
    CheckFailedError,
    DtypeError,
    InputError,
    LinlimError,
    ShapeError,
)
from .filters import DelayFilter, DelayTransform, delay_power_spectrum
from .inference import fisher_matrix, gauss_newton, lbfgs, levenberg_marquardt, sample
from .io.uvdata import read_uvh5, write_uvh5
from .likelihood import GaussianLikelihood, LogPosterior
from .operators import LinearOperator, Operator
from .params import BoundedTransform, IdentityTransform, LogTransform, ParamBlock, Params
from .priors import GaussianPrior, GRFPrior, SmoothnessPrior
from .rime import RIME, RIMEIntensity, simulate_vis
from .sky import PointSourceCatalog, PowerLawSpectrum
from .telescope import ArrayLayout, hera_site, hex_array, source_enu
from .testing import dottest, gradcheck

__version__ = "0.1.0"

__all__ = [
    "operators", "testing", "telescope", "sky", "beam", "rime", "calibration",
    "inference", "filters",
    "get_backend", "get_xp", "set_backend", "use_backend", "to_numpy",
    "LinlimError", "ShapeError", "DtypeError", "BackendError", "BackendMismatchError",
    "InputError", "CheckFailedError",
    "Operator", "LinearOperator",
    "Params", "ParamBlock", "IdentityTransform", "LogTransform", "BoundedTransform",
    "dottest", "gradcheck",
    "hera_site", "hex_array", "ArrayLayout", "source_enu",
    "PointSourceCatalog", "PowerLawSpectrum",
    "AiryBeam", "GaussianBeam", "BasisBeam", "PixelBeam",
    "RIME", "RIMEIntensity", "simulate_vis", "write_uvh5", "read_uvh5",
    "di_gains", "dd_gains", "stefcal",
    "GaussianLikelihood", "LogPosterior", "GaussianPrior", "SmoothnessPrior", "GRFPrior",
    "gauss_newton", "levenberg_marquardt", "lbfgs", "fisher_matrix", "sample",
    "DelayTransform", "DelayFilter", "delay_power_spectrum",
    "__version__",
]

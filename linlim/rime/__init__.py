"""The visibility operator (RIME): forward, Jacobians, chunking, and ``simulate_vis``.

* :class:`RIME` -- visibilities from (intensities, beams[, antenna positions]), with
  ``jvp``/``vjp``/``linearize``;
* :class:`RIMEIntensity` -- the intensity-only linear operator: the Jacobian of
  ``FixInput(RIME, 1, beam)``, cached;
* :func:`simulate_vis` -- a matvis-style entry point (RA/Dec, astropy times, pyuvdata beams).
"""

from .chunking import available_memory, default_memory_budget, plan_frequency_chunks
from .engine import C_LIGHT, RimeEngine
from .operator import RIME, RIMEIntensity
from .simulate import simulate_vis

__all__ = ["RIME", "RIMEIntensity", "RimeEngine", "simulate_vis", "C_LIGHT",
           "available_memory", "default_memory_budget", "plan_frequency_chunks"]

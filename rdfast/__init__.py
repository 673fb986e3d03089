"""rdfast: fast AIS and BDMC estimates of rate-distortion curves and log-likelihoods of
decoder-based generative models (Huang, Makhzani, Cao & Grosse, ICML 2020)."""
from . import analytic, schedules
from .ais import ais
from .bdmc import BDMCResult, bdmc
from .curve import rd_curve
from .priors import GaussianMixture, StandardNormal
from .result import AISResult
from .stepsizes import StepSizes

__version__ = "0.1.0"
__all__ = ["ais", "bdmc", "BDMCResult", "rd_curve", "analytic", "schedules", "AISResult", "StepSizes", "StandardNormal",
           "GaussianMixture"]

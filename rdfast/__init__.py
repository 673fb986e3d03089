"""rdfast: fast AIS and BDMC estimates of rate-distortion curves and log-likelihoods of
decoder-based generative models (Huang, Makhzani, Cao & Grosse, ICML 2020)."""
from .sampling import analytic, schedules
from .sampling.annealing import ais
from .sampling.bdmc import BDMCResult, bdmc
from .sampling.curve import rd_curve
from .sampling.loglik import LogLikelihood, log_likelihood
from .sampling.priors import GaussianMixture, StandardNormal
from .sampling.result import AISResult
from .sampling.tuning import Tuning

__version__ = "0.1.0"
__all__ = ["ais", "bdmc", "BDMCResult", "rd_curve", "log_likelihood", "LogLikelihood", "analytic", "schedules",
           "AISResult", "Tuning", "StandardNormal", "GaussianMixture"]

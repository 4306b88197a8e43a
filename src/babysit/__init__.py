"""babysit: make training neural networks go right.

The practice of "Neural Networks Part 3: Learning and Evaluation" as a PyTorch toolkit:
gradient checks, sanity checks, a training monitor, update rules and schedules,
hyperparameter search, ensembles and one report.
"""

__version__ = "0.1.0"

from .check import GradcheckReport, gradcheck, gradcheck_model, gradcheck_numpy
from .config import default_config, load_config
from .data import DataSplit, load_data
from .errors import UserError
from .models import build_model, chance_loss, l2_penalty, make_loss
from .optim import OPTIMIZERS, SCHEDULES, make_optimizer
from .rundir import RunDir, load_checkpoint
from .sanity import PreflightReport, preflight
from .search import SearchResult, run_search, search_objective, top_trials
from .train import Callback, TrainState, evaluate, fit
from .watch import Diagnosis, Monitor, MonitorCallback
from .ensemble import EnsembleRow, build_ensembles
from .report import write_report
from .workflow import run_workflow

__all__ = ["__version__", "default_config", "load_config", "DataSplit", "load_data", "UserError",
           "build_model", "make_loss", "chance_loss", "l2_penalty", "make_optimizer", "OPTIMIZERS",
           "SCHEDULES", "RunDir", "load_checkpoint", "Callback", "TrainState", "fit", "evaluate",
           "Monitor", "MonitorCallback", "Diagnosis", "build_ensembles", "EnsembleRow",
           "gradcheck", "gradcheck_model", "gradcheck_numpy", "GradcheckReport",
           "preflight", "PreflightReport",
           "write_report", "run_workflow",
           "run_search", "search_objective", "SearchResult", "top_trials"]

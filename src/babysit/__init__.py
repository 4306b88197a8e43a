"""babysit: make training neural networks go right.

The practice of "Neural Networks Part 3: Learning and Evaluation" as a PyTorch toolkit:
gradient checks, sanity checks, a training monitor, update rules and schedules,
hyperparameter search, ensembles and one report.
"""

__version__ = "0.1.0"

from .config import default_config, load_config
from .data import DataSplit, load_data
from .errors import UserError
from .models import build_model, chance_loss, l2_penalty, make_loss
from .optim import make_optimizer
from .rundir import RunDir, load_checkpoint
from .search import SearchResult, run_search, top_trials
from .train import Callback, TrainState, evaluate, fit

__all__ = ["__version__", "default_config", "load_config", "DataSplit", "load_data", "UserError",
           "build_model", "make_loss", "chance_loss", "l2_penalty", "make_optimizer", "RunDir",
           "load_checkpoint", "run_search", "SearchResult", "top_trials", "Callback", "TrainState", "fit", "evaluate"]

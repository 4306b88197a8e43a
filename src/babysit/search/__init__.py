"""Hyperparameter search as the notes describe it, standing on Optuna.

Workers sample settings and train them, checkpointing every epoch with the validation score
in the file name; a master keeps the workers alive and runs the search coarse to fine; border
alarms say when a range was too narrow. Modules, one concept each:

- :mod:`.space`     the search space in ``[search.space]`` (log/uniform/int/categorical)
- :mod:`.samplers`  random (default), TPE/GP (Bayesian), grid (for comparison); pruners
- :mod:`.stages`    coarse-to-fine stages and the narrowing rule
- :mod:`.budget`    what each stage spent (epochs, share) and bought (best before/after)
- :mod:`.alarms`    the border alarm
- :mod:`.worker`    one worker process: sample, train, report, prune
- :mod:`.objective` a user's own training function as the trial: :func:`search_objective`
- :mod:`.retry`     budgets, and retrying trials of workers that died
- :mod:`.heartbeat` heartbeat files on the journal, for workers on other machines
- :mod:`.fingerprint` the experiment every worker must train (a different config is refused)
- :mod:`.master`    :func:`run_search`: stages, worker processes, progress, Ctrl-C, resume
- :mod:`.storage`   journal file in the run directory, or PostgreSQL for many machines
- :mod:`.results`   leaderboard, plots, :func:`top_trials`
"""

from .master import SearchResult, run_search
from .objective import StopTrial, search_objective
from .results import top_trials
from .space import Param, Space

__all__ = ["run_search", "search_objective", "StopTrial", "SearchResult", "top_trials", "Space", "Param"]

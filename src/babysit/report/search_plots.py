"""The search's figures, drawn by Optuna's own matplotlib plotting functions from the study journal.

Optuna draws the optimization history, the parameter importances, a slice per parameter and the
parallel coordinates; this module only reads the journal (a copy of it: reading must not take
the search's file lock or write beside it), picks the stage to show, labels the objective as
what it is (validation accuracy) and embeds each figure as SVG. ``optuna-dashboard
RUN_DIR/search/study.journal`` opens the same journal interactively.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path

from .markup import e

OBJECTIVE = "validation accuracy"


def load_studies(journal: Path) -> list:
    """Every study in the journal at `journal`, read from a private copy."""
    import optuna
    from optuna.storages.journal import JournalFileBackend

    with tempfile.TemporaryDirectory(prefix="babysit-report-") as tmp:
        copy = Path(tmp) / "study.journal"
        shutil.copyfile(journal, copy)
        storage = optuna.storages.JournalStorage(JournalFileBackend(str(copy)))
        studies = [optuna.load_study(study_name=s.study_name, storage=storage)
                   for s in storage.get_all_studies()]
        return [_frozen(s) for s in studies]


def _frozen(study):
    """An in-memory study holding `study`'s trials (the journal copy is deleted after reading)."""
    import optuna

    copy = optuna.create_study(study_name=study.study_name, directions=study.directions)
    copy.add_trials(study.get_trials(deepcopy=False))
    return copy


def optuna_figures(run) -> str:
    """The search section's figures as HTML (SVG images), or '' when there is no study to draw.

    Drawn once per state of the journal (its size and modification time), then read from the
    run's report cache: a dozen Optuna figures take seconds, the journal rarely changes."""
    from .cache import cached, figure_list

    journal = run.path / "search" / "study.journal"
    if not journal.is_file():
        return ""
    stat = journal.stat()
    parts = cached(run.path, "optuna-figures", f"{stat.st_size}-{stat.st_mtime_ns}",
                   lambda: _optuna_figures(journal), trust=figure_list)
    if not parts:
        return ""
    return (f"<h3>Figures (Optuna's own plots)</h3><div class=\"figures\">{''.join(parts)}</div>"
            "<p class=\"note\">Interactively: <code>optuna-dashboard "
            f"{e(journal)}</code>.</p>")


def _optuna_figures(journal: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import optuna
    import optuna.visualization.matplotlib as ovm

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        studies = [s for s in load_studies(journal) if _complete(s)]
    except Exception:  # an unreadable journal: the search's own PNGs stand in
        return []
    if not studies:
        return []
    main = max(studies, key=lambda s: len(_complete(s)))  # the stage with the most finished trials
    final = studies[-1]
    parts = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna marks its matplotlib backend experimental
        parts.append(_draw(lambda: ovm.plot_optimization_history(studies, target_name=OBJECTIVE),
                           "optimization history, every stage (each its own study)",
                           title=f"{OBJECTIVE} per trial, every stage", legend_below=True))
        if len(_complete(main)) >= 3:
            # fANOVA's forest is random: a fixed seed keeps the page the same from one write to the next
            evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
            parts.append(_draw(lambda: ovm.plot_param_importances(main, evaluator=evaluator, target_name=OBJECTIVE),
                               f"parameter importances (fANOVA) in {main.study_name}, "
                               f"{len(_complete(main))} trials",
                               title=f"share of the variance of {OBJECTIVE} per parameter"))
        for param in _params(main):
            parts.append(_draw(lambda p=param: ovm.plot_slice(main, params=[p], target_name=OBJECTIVE),
                               f"{param}: {OBJECTIVE} of each trial in {main.study_name}",
                               title=f"{OBJECTIVE} against {param}"))
        # the parallel coordinates of the stage with the most trials: two lines make no picture
        shown = final if len(_complete(final)) >= 5 else main
        if len(_params(shown)) >= 2 and len(_complete(shown)) >= 3:
            parts.append(_draw(lambda: ovm.plot_parallel_coordinate(shown, target_name=OBJECTIVE),
                               f"parallel coordinates of {shown.study_name}, {len(_complete(shown))} trials",
                               title=f"parallel coordinates, {shown.study_name}", size=(8.0, 4.2),
                               names_apart=True))
    return [p for p in parts if p]


def _complete(study) -> list:
    import optuna

    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))


def _params(study) -> list[str]:
    names: list[str] = []
    for t in _complete(study):
        names.extend(k for k in t.params if k not in names)
    return names


def _draw(plot, caption: str, title: str | None = None, size: tuple[float, float] = (6.4, 4.2),
          legend_below: bool = False, names_apart: bool = False) -> str:
    """Optuna's figure from `plot()`, titled by what it plots (Optuna's titles name the plot
    type), as an SVG ``<figure>``; '' when Optuna cannot draw it."""
    import matplotlib.pyplot as plt

    from .figures import svg_figure

    try:
        ax = plot()
    except Exception:  # too few trials for this figure, one value only, ...
        plt.close("all")
        return ""
    axes = ax if hasattr(ax, "flat") else [ax]
    fig = next(iter(axes)).figure
    fig.set_size_inches(*size)
    if title:
        for loc in ("left", "right"):  # Optuna's own title sits on the left: one title only
            fig.axes[0].set_title("", loc=loc)
        # parallel coordinates label each axis's top value just under the axes' top edge, where
        # the title's default 6 pt gap is too small: a name such as 'adam' ran into it
        fig.axes[0].set_title(title, pad=18 if names_apart else 6)
    if names_apart:
        _axis_names_apart(fig.axes[0])
    if legend_below and fig.axes[0].get_legend() is not None:
        # Optuna puts the legend right of the axes, which squeezes them to half the figure
        fig.axes[0].legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2, fontsize=8, frameon=False)
    for a in fig.axes:
        if a.get_ylabel() == "Objective Value":
            a.set_ylabel(OBJECTIVE)
        for points in a.collections:  # Optuna's pale end of "Blues" vanishes on white
            if points.get_cmap() is not None and points.get_cmap().name == "Blues":
                points.set_cmap("viridis")
    return svg_figure(fig, caption)


def _axis_names_apart(ax) -> None:
    """Optuna slants the parameter names under their axes, where long neighbours ('optim.name',
    'optim.schedule') print over each other: each name upright, broken after its dots, and
    turned on end only when even so two neighbours would touch."""
    ticks, names = ax.get_xticks(), [t.get_text() for t in ax.get_xticklabels()]
    if len(names) < 2:
        return
    ax.set_xticks(ticks, [n.replace(".", ".\n") for n in names], rotation=0, ha="center")
    ax.figure.canvas.draw()  # the labels' places at the figure's final size
    renderer = ax.figure.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in ax.get_xticklabels()]
    if min(right.x0 - left.x1 for left, right in zip(boxes, boxes[1:])) < 4:  # pixels apart
        ax.set_xticks(ticks, names, rotation=90, ha="center")

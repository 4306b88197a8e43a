"""What the preflight checks: a model factory, a loss, training data, a regularization term and
an update rule — validated once, with the few operations every check needs."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import nn

from .. import optim
from ..config import check_value, violation
from ..errors import UserError
from ..models import LOSSES, chance_loss, l2_penalty, make_loss, step_loss
from ..train import resolve_device, seed_everything

STEP_LOSS = "training_step"  # the loss's name when the model computes its own (a LightningModule)

RegFn = Callable[[nn.Module], torch.Tensor]

# The L2 strength the regularization check probes with when the experiment has none (reg = 0):
# the check is about whether the term rises with its strength, so some strength is needed.
PROBE_REG = 1e-3


@dataclass
class Options:
    """The preflight's settings (the ``[preflight]`` config section plus the pipeline's own).

    Every field is a keyword option of :func:`babysit.preflight`.
    """

    reg: float = 1e-4  # strength of the default L2 term 0.5 * reg * sum(W**2)
    reg_fn: RegFn | None = None  # the regularization term as a callable of the model
    optimizer: str | Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer] = "adam"
    lr: float = 1e-3  # with an optimizer given by name
    batch_size: int = 64
    seed: int = 0
    device: str | torch.device = "cpu"
    quiet: bool = True
    threads: int = 1  # torch CPU threads while the checks run (0: leave torch's setting)
    skip: Sequence[str] = ()
    examples: int = 512  # examples on which initial_loss and reg_increases_loss measure the loss
    initial_tolerance: float = 0.1  # initial loss within +-10% of its value at chance
    overfit_examples: int = 20
    overfit_steps: int = 500  # the bound on full-batch steps to memorize them
    overfit_target: float = 0.01  # "near-zero": a loss at most 1% of the loss at chance
    dependence_examples: int = 512  # 3/4 train, 1/4 held out
    dependence_steps: int = 150
    dependence_margin: float = 0.1  # held-out accuracy real minus zeroed inputs, at least
    gradcheck_points: int = 3
    gradcheck_burn_in: int = 0  # training steps before the check (a "characteristic" phase)
    gradcheck_options: dict = field(default_factory=dict)  # h, sweep, ...: for gradcheck_model

    @classmethod
    def from_kwargs(cls, options: dict[str, Any]) -> "Options":
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(options) - set(names))
        if unknown:
            raise UserError(f"unknown preflight option(s) {', '.join(unknown)}: "
                            f"valid options are {', '.join(names)}")
        opts = cls(**options)
        opts.validate()
        return opts

    # Options that are config keys under another name; the rest are preflight.<name>.
    CONFIG_KEYS = {"reg": "loss.reg", "lr": "optim.lr", "batch_size": "train.batch_size", "seed": "seed",
                   "gradcheck_points": "gradcheck.num_points", "gradcheck_burn_in": "gradcheck.burn_in"}

    def validate(self) -> None:
        """Each option against its config key's rule (babysit.config): one message shape."""
        for f in dataclasses.fields(self):
            check_value(self.CONFIG_KEYS.get(f.name, f"preflight.{f.name}"), getattr(self, f.name))
        if self.reg_fn is not None and not callable(self.reg_fn):
            raise UserError("reg_fn must be a callable taking the model and returning the "
                            "regularization term (a scalar tensor)")
        if isinstance(self.skip, str):
            self.skip = [self.skip]
        if not isinstance(self.skip, (list, tuple, set)) or not all(isinstance(n, str) for n in self.skip):
            raise UserError(f"preflight.skip takes a list of check names, like [\"gradcheck\"], "
                            f"not {self.skip!r}")


@dataclass
class Pipeline:
    """The model factory, loss, data and update rule under test, plus the few shared operations."""

    make_model: Callable[[], nn.Module]
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None  # None: the model's training_step
    loss_name: str
    x: torch.Tensor
    y: torch.Tensor
    num_classes: int
    options: Options
    device: torch.device

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def build(cls, make_model, loss, data, num_classes: int, options: Options) -> "Pipeline":
        if not callable(make_model):
            raise UserError("make_model must be a function that returns a freshly initialized "
                            "torch.nn.Module (e.g. lambda: MyNet())")
        loss_fn, loss_name = _loss(loss)
        x, y = _data(data, num_classes)
        if isinstance(options.optimizer, str):  # an unknown name fails now, not checks later
            optim.make_optimizer(options.optimizer, [torch.zeros(1, requires_grad=True)], lr=options.lr)
        elif not callable(options.optimizer):
            raise UserError("optimizer must be an update rule's name (with lr) or a callable "
                            "taking the parameters and returning a torch.optim.Optimizer")
        device = resolve_device(options.device) if isinstance(options.device, str) else options.device
        return cls(make_model, loss_fn, loss_name, x.to(device), y.to(device), num_classes,
                   options, device)

    # -- models and losses ------------------------------------------------------------------

    def fresh_model(self) -> nn.Module:
        """A new model from ``make_model()``, created under the preflight's seed (so two fresh
        models start from the same weights)."""
        seed_everything(self.options.seed)
        model = self.make_model()
        if not isinstance(model, nn.Module):
            raise UserError(f"make_model() must return a torch.nn.Module, not {type(model).__name__}")
        return model.to(self.device)

    def scores(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        scores = model(x)
        if not isinstance(scores, torch.Tensor) or scores.shape != (len(x), self.num_classes):
            shape = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
            raise UserError(f"the model must return class scores of shape (N, {self.num_classes}) "
                            f"for N inputs, but returned {shape} for {len(x)} inputs: check its "
                            "last layer and num_classes")
        return scores

    def data_loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.loss_fn is None:  # a LightningModule's own loss
            return step_loss(model, x, y)
        return self.loss_fn(self.scores(model, x), y)

    @torch.no_grad()
    def measure(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        """(data loss, accuracy) in eval mode: dropout off, as when a model is used."""
        was_training = model.training
        model.eval()
        scores = self.scores(model, x)
        loss = float(self.loss_fn(scores, y) if self.loss_fn is not None else step_loss(model, x, y))
        accuracy = float((scores.argmax(dim=1) == y).float().mean())
        model.train(was_training)
        return loss, accuracy

    @property
    def chance(self) -> float:
        """The data loss when all class scores are equal: -ln(1/C) for softmax, C-1 for the SVM.
        A module's own training_step is taken to be a cross-entropy (what classifiers train on)."""
        if self.loss_name in LOSSES:
            return chance_loss(self.loss_name, self.num_classes)
        if self.loss_fn is None:
            return chance_loss("softmax", self.num_classes)
        equal = torch.zeros(len(self.y), self.num_classes, device=self.device)
        return float(self.loss_fn(equal, self.y))

    @property
    def chance_formula(self) -> str:
        c = self.num_classes
        return {"softmax": f"-ln(1/{c})", "svm": f"C-1 = {c}-1",
                STEP_LOSS: f"-ln(1/{c}) (training_step taken as cross-entropy)"}.get(
                    self.loss_name, "the loss at equal scores")

    # -- regularization ---------------------------------------------------------------------

    @property
    def reg_fn(self) -> RegFn:
        """The regularization term as the training uses it: the user's, or L2 at strength reg."""
        if self.options.reg_fn is not None:
            return self.options.reg_fn
        return lambda model: l2_penalty(model, self.options.reg)

    @property
    def reg_in_use(self) -> RegFn | None:
        """The regularization term the training adds, or None when it adds none (L2, reg = 0)."""
        if self.options.reg_fn is None and self.options.reg == 0:
            return None
        return self.reg_fn

    def reg_at(self, model: nn.Module, factor: float) -> torch.Tensor:
        """The regularization term with its strength multiplied by `factor`.

        For the default L2 with ``reg = 0`` the strength is :data:`PROBE_REG`, so that raising
        it means something.
        """
        if self.options.reg_fn is not None:
            return factor * self.options.reg_fn(model)
        return l2_penalty(model, (self.options.reg or PROBE_REG) * factor)

    @property
    def reg_label(self) -> str:
        if self.options.reg_fn is not None:
            return f"the given regularization {getattr(self.options.reg_fn, '__name__', 'term')}"
        if self.options.reg == 0:
            return f"L2 at probe strength {PROBE_REG:g} (the experiment has reg = 0)"
        return f"L2 at strength reg = {self.options.reg:g}"

    # -- training ---------------------------------------------------------------------------

    def make_optimizer(self, params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        """The pipeline's update rule on `params` (a name with ``lr``, or the given factory)."""
        opt = self.options.optimizer
        if callable(opt):
            return opt(params)
        return optim.make_optimizer(opt, params, lr=self.options.lr)

    @property
    def optimizer_label(self) -> str:
        opt = self.options.optimizer
        if callable(opt):
            return getattr(opt, "label", None) or getattr(opt, "__name__", "the given optimizer")
        return f"{opt} with lr {self.options.lr:g}"

    def sample(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """`n` examples, the same ones for every check: the first `n` of one shuffle of the data
        (seeded), so data sorted by class still gives a mixed subset."""
        idx = self.order[:n]
        return self.x[idx], self.y[idx]

    @functools.cached_property
    def order(self) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.options.seed)
        return torch.randperm(len(self.y), generator=generator).to(self.device)


def _loss(loss) -> tuple[Callable | None, str]:
    if loss is None:  # the model's own training_step (a LightningModule)
        return None, STEP_LOSS
    if isinstance(loss, str):
        return make_loss(loss), loss
    if callable(loss):
        return loss, getattr(loss, "__name__", "custom loss")
    raise UserError(f"loss must be 'softmax', 'svm', a callable (scores, targets) -> scalar or None "
                    f"(a LightningModule's training_step), "
                    f"not {type(loss).__name__}")


def _data(data, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise UserError("data must be a pair (x, y) of tensors from the training set")
    x, y = (torch.as_tensor(t) for t in data)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise UserError(violation("num_classes", "a whole number >= 2", num_classes, "the number of classes"))
    if x.dim() < 2 or y.dim() != 1 or len(x) != len(y):
        raise UserError(f"data must be inputs x of shape (N, ...) and labels y of shape (N,), "
                        f"got {tuple(x.shape)} and {tuple(y.shape)}")
    if len(y) < 8:
        raise UserError(f"the preflight needs at least 8 training examples, got {len(y)}")
    if not x.is_floating_point():
        x = x.float()
    if y.is_floating_point() or y.dtype == torch.bool:
        raise UserError(f"labels y must be class indices (an integer tensor), not {y.dtype}")
    y = y.long()
    if int(y.min()) < 0 or int(y.max()) >= num_classes:
        raise UserError(f"labels must lie in 0..{num_classes - 1} for num_classes = {num_classes}, "
                        f"found {int(y.min())}..{int(y.max())}")
    if not torch.isfinite(x).all():
        raise UserError("the inputs x contain NaN or infinite values: clean or impute them first")
    return x, y

"""The Lightning callback: a real LightningModule trained on digits on the CPU, watched by the
same monitor a plain loop uses; a planted too-high learning rate gets its diagnosis."""

import json
import math

import pytest
import torch
from torch import nn

pl = pytest.importorskip("pytorch_lightning")

from babysit import load_data  # noqa: E402
from babysit.cli import main  # noqa: E402
from babysit.lightning import Babysit  # noqa: E402
from tests.check.planted import HalfReLU  # noqa: E402  (a ReLU whose backward halves the gradient)


class DigitsNet(pl.LightningModule):
    def __init__(self, lr: float):
        super().__init__()
        self.lr = lr
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        scores = self(x)
        loss = nn.functional.cross_entropy(scores, y)
        self.log("train_acc", (scores.argmax(1) == y).float().mean(), on_epoch=True, on_step=False)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        scores = self(x)
        self.log("val_loss", nn.functional.cross_entropy(scores, y))
        self.log("val_acc", (scores.argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9, nesterov=True)


def loaders():
    data = load_data("digits")
    train = torch.utils.data.TensorDataset(data.x_train, data.y_train)
    val = torch.utils.data.TensorDataset(data.x_val, data.y_val)
    return (torch.utils.data.DataLoader(train, batch_size=64, shuffle=True),
            torch.utils.data.DataLoader(val, batch_size=512))


def train(lr: float, run_dir, epochs: int = 6) -> Babysit:
    torch.manual_seed(0)
    callback = Babysit(run_dir, hist_every=10)
    trainer = pl.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, callbacks=[callback],
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    train_loader, val_loader = loaders()
    trainer.fit(DigitsNet(lr), train_loader, val_loader)
    return callback


def test_a_lightning_run_is_watched_and_reported(tmp_path, capsys):
    callback = train(0.05, tmp_path / "healthy")
    run = tmp_path / "healthy"
    steps = [json.loads(line) for line in (run / "watch" / "steps.jsonl").read_text().splitlines()]
    epochs = [json.loads(line) for line in (run / "watch" / "epochs.jsonl").read_text().splitlines()]
    per_epoch = math.ceil(len(load_data("digits").y_train) / 64)  # 18 batches of 1,150 examples
    assert len(steps) == 6 * per_epoch and [s["step"] for s in steps] == list(range(1, 6 * per_epoch + 1))
    assert [e["epoch"] for e in epochs] == [1, 2, 3, 4, 5, 6]
    assert all(0.8 < e["val_acc"] <= 1.0 and "train_acc" in e and "val_loss" in e for e in epochs[2:])
    assert (run / "watch" / "ratios.jsonl").stat().st_size > 0  # ratios from Lightning's optimizer
    assert {d.code for d in callback.diagnoses()} & {"lr_too_high", "update_ratio_high", "nonfinite"} == set()
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2, 3, 4, 5, 6]
    assert "report: babysit report" in capsys.readouterr().out
    assert main(["report", str(run)]) == 0
    assert (run / "report.html").stat().st_size > 10_000


def test_a_too_high_learning_rate_is_diagnosed(tmp_path, capsys):
    callback = train(3.0, tmp_path / "hot", epochs=6)
    codes = {d.code for d in callback.diagnoses()}
    assert codes & {"lr_too_high", "update_ratio_high"}, codes
    out = capsys.readouterr().out
    assert any(code in out for code in ("lr_too_high", "update_ratio_high"))


class BrokenNet(DigitsNet):
    def forward(self, x):
        return self.net[3](HalfReLU.apply(self.net[1](self.net[0](x))))


def digits_batch(n=64):
    data = load_data("digits")
    return data.x_train[:n], data.y_train[:n]


def test_gradcheck_model_checks_a_lightning_modules_own_training_step():
    import babysit

    torch.manual_seed(0)
    report = babysit.gradcheck_model(DigitsNet(0.05), batch=digits_batch())
    assert report.outcome in ("passed", "inconclusive") and not report.failures, str(report)
    assert {r.name for r in report.rows} >= {"net.1.weight", "net.3.bias"}
    torch.manual_seed(0)
    broken = babysit.gradcheck_model(BrokenNet(0.05), batch=digits_batch())
    assert broken.outcome == "failed" and any(r.name == "net.1.weight" for r in broken.failures)


def test_preflight_takes_a_lightning_module_and_its_training_step():
    import babysit

    x, y = digits_batch(400)
    report = babysit.preflight(lambda: DigitsNet(0.05), data=(x, y), num_classes=10, lr=0.05,
                               skip=["input_dependence"], quiet=True)
    assert report.passed, str(report)
    initial = report.checks["initial_loss"]
    assert "training_step" in initial.summary  # its chance loss is said to be cross-entropy's
    assert report.checks["overfit_tiny"].passed

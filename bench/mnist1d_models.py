"""Benchmark: test accuracy of babysit's models on MNIST-1D, beside the paper's table.

The paper (Greydanus, "Scaling down deep learning"; 4,000 train / 1,000 test) reports test
accuracy 32% logistic regression, 68% MLP, 94% CNN, 96% human expert. This trains each model
of babysit's zoo on the default config — the model swapped, nothing else — for a few seeds:

  * validation (data.val_fraction) is carved from the official 4,000 training examples only
    (babysit's own split, ``data.dataset = "mnist1d"``); no more data is generated;
  * the trained model (the final weights) is then evaluated once on the official 1,000 test
    examples, standardized with the training split's mean and std. Nothing chooses on them.

and prints each test accuracy with its n and 95% Wilson interval, the median over the seeds,
and the CPU seconds per trial (the machine may be shared: CPU time, not wall time, says what a
trial costs). With ``--paper`` it also trains the paper's own CNN (three 25-channel Conv1d
layers, Adam 1e-2, 6,000 steps of batch 100 — 150 epochs) as a side-by-side reference.

    python bench/mnist1d_models.py [--seeds 3] [--paper] [--only convnet] [--set key=value ...]

Measured (seeds 0-2, n=1000 test each; 2-core machine shared with other jobs): logistic
regression 30.6/30.4/32.1%, MLP 60.2/61.0/61.3%, the default convnet 97.4/97.2/97.7% in
2.4-3.2 s CPU a training; the paper's CNN by its recipe (seeds 0-1) 91.9/92.7% in ~10 s CPU.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "src"), str(HERE)]

import torch  # noqa: E402
from torch import nn  # noqa: E402

from babysit import experiment  # noqa: E402
from babysit.config import load_config  # noqa: E402
from babysit.stats import Accuracy  # noqa: E402

PAPER = {"logistic regression": 0.32, "MLP": 0.68, "CNN": 0.94}
MODELS = {  # name -> the --set overrides that make it from the default config
    "logistic regression": ["model.name=mlp", "model.depth=0"],
    "MLP": ["model.name=mlp", "model.depth=2", "model.width=128"],
    "convnet (default)": [],
}
PAPER_CNN = ["model.name=mnist1d_models:paper_cnn", "optim.name=adam", "optim.lr=1e-2",
             "optim.schedule=constant", "loss.reg=0", "model.dropout=0", "train.batch_size=100",
             "train.epochs=150", "data.val_fraction=0.001"]  # the paper trains on all 4,000


def paper_cnn(input_shape, num_classes):
    """The paper's ConvBase: Conv1d(1,25,5,s2,p1) -> Conv1d(25,25,3,s2,p1) x2, ReLU, linear."""
    return nn.Sequential(nn.Unflatten(1, (1, input_shape[0])),
                         nn.Conv1d(1, 25, 5, stride=2, padding=1), nn.ReLU(),
                         nn.Conv1d(25, 25, 3, stride=2, padding=1), nn.ReLU(),
                         nn.Conv1d(25, 25, 3, stride=2, padding=1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(25 * 5, num_classes))


def test_accuracy(overrides: list[str], seed: int) -> tuple[Accuracy, Accuracy, float]:
    """(test, validation) accuracy of the final weights of one training, and its CPU seconds."""
    config = load_config(overrides=["data.dataset=mnist1d", "watch.enabled=false",
                                    "train.checkpoints=false", f"seed={seed}", *overrides])
    started = time.process_time()
    exp, _ = experiment.train(config, None, quiet=True)
    cpu = time.process_time() - started
    split, model = exp.data, exp.model.eval()
    assert split.test_source == "MNIST-1D official test split" and split.n_test == 1000
    with torch.no_grad(), split.unlocked_test():  # read once, after training: nothing chose on it
        test_hits = (model(split.x_test).argmax(1) == split.y_test).tolist()
        val_hits = (model(split.x_val).argmax(1) == split.y_val).tolist()
    return Accuracy.of(test_hits), Accuracy.of(val_hits), cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--paper", action="store_true", help="also the paper's own CNN (150 epochs)")
    parser.add_argument("--only", default="", help="only the models whose name starts with this")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args()
    torch.set_num_threads(1)
    models = dict(MODELS, **({"paper's CNN (its recipe)": PAPER_CNN} if args.paper else {}))
    print(f"MNIST-1D test accuracy (official 1,000 test examples; validation carved from the "
          f"4,000 training ones); {args.seeds} seeds; torch threads 1")
    for name, overrides in models.items():
        if not name.startswith(args.only):
            continue
        accs = []
        for seed in range(args.seeds):
            test, val, cpu = test_accuracy([*args.overrides, *overrides], seed)
            accs.append(test.value)
            print(f"  {name:<26} seed {seed}: test {test}  val {val.value:.4f} (n={val.n})  "
                  f"{cpu:5.1f} s CPU")
        paper = PAPER.get(name.split(" (")[0])
        print(f"{name:<28} median test {statistics.median(accs):.4f} over {len(accs)} seeds"
              + (f"   (paper: {paper:.2f})" if paper else ""), flush=True)


if __name__ == "__main__":
    main()

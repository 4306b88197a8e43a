"""The experiment most tests train: digits with an MLP (fast), not the default MNIST-1D convnet.

Until the default became MNIST-1D with the 1-D convnet (issue 16), this was the default
experiment; tests that train keep it where speed matters. ``DIGITS`` goes first in a list of
``--set`` overrides, so a test's own settings still win.
"""

DIGITS = ["data.dataset=digits", "model.name=mlp", "model.depth=2", "model.width=128",
          "optim.name=nesterov", "optim.lr=0.05", "optim.schedule=constant", "gradcheck.burn_in=0"]


def digits_args(*overrides: str) -> list[str]:
    """``--set`` arguments of the CLI for `DIGITS` and then `overrides`."""
    return [arg for item in (*DIGITS, *overrides) for arg in ("--set", item)]

"""L-BFGS as a full-batch method: torch's implementation with the strong-Wolfe line search.

L-BFGS builds a curvature model from the last few (step, gradient change) pairs; on
minibatches the noise in those differences breaks it, which is why the notes call it a
full-batch method. :func:`babysit.fit` gives an optimizer marked ``full_batch`` one closure
step per epoch over the whole training set (up to `max_iter` inner iterations), and refuses a
plain ``torch.optim.LBFGS`` on minibatches unless it is marked ``force_minibatch``.
"""

from __future__ import annotations

import torch


class LBFGS(torch.optim.LBFGS):
    """``torch.optim.LBFGS(line_search_fn="strong_wolfe")`` that :func:`fit` runs full batch.

    With ``force_minibatch=True`` fit runs it on each minibatch instead (a closure step per
    batch), for those who know what they are doing.
    """

    def __init__(self, params, lr: float = 1.0, max_iter: int = 20, history_size: int = 10,
                 force_minibatch: bool = False):
        super().__init__(params, lr=lr, max_iter=max_iter, history_size=history_size,
                         line_search_fn="strong_wolfe")
        self.full_batch = not force_minibatch
        self.force_minibatch = force_minibatch

"""Results that differ from their unperturbed value in one column, carried through a forward pass.

Moving one entry of a weight matrix changes one output unit of its layer: inside the batched
pass (:mod:`babysit.check.batched`) the layer's output for perturbation k is the unperturbed
output ``base`` (computed once, for the whole batch) with column ``j_k`` of its last dimension
replaced by ``column_k``. :class:`OneColumn` remembers these parts next to the dense result
it hands to the user's code, so that the ops that follow can work on the parts instead of on
K dense copies:

* a pointwise function (relu, tanh, ...):  f(out) = f(base) with column j set to f(column);
* adding a vector b over the last dimension:  out + b = (base + b) with column j set to
  column + b_j;
* a matrix product with a plain matrix M:  out @ M = base @ M + (column - base_j) M_j, a
  rank-one change of the unperturbed product — the K dense products never run, and the
  pointwise op's kink winners are those of the K columns and the one base.

The sums are the same as in a plain evaluation up to rounding (eps |f|, below the round-off
floor of a centered difference); :func:`babysit.check.batched.verify` compares each tensor's
batched result with a plain evaluation before it is trusted.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

#: Functions applied entry by entry, with no tensor argument but their input: f(out) is
#: f(base) with column j set to f(column). Random ones (dropout) are not here: they would
#: draw for the base once instead of for every copy.
POINTWISE = {
    torch.relu, torch.Tensor.relu, F.relu, torch.tanh, torch.Tensor.tanh, F.tanh, torch.sigmoid,
    torch.Tensor.sigmoid, F.sigmoid, F.leaky_relu, F.elu, F.selu, F.celu, F.gelu, F.silu, F.softplus,
    F.hardtanh, F.relu6, F.mish, F.logsigmoid, F.tanhshrink, F.softsign, torch.exp, torch.Tensor.exp,
    torch.abs, torch.Tensor.abs, torch.square, torch.Tensor.square,
}


class OneColumn(NamedTuple):
    """``out`` (what the user's code holds) equals `base` with ``[..., j]`` set to `column`.

    `base` is unbatched (the unperturbed result); `column` (shape ``base.shape[:-1] + (1,)``)
    and the index `j` are batched, one per perturbation.
    """

    out: torch.Tensor
    column: torch.Tensor
    base: torch.Tensor
    j: torch.Tensor

    @classmethod
    def build(cls, column: torch.Tensor, base: torch.Tensor, j: torch.Tensor) -> "OneColumn":
        return cls(None, column, base, j)

    def dense(self) -> torch.Tensor:
        """The result written out: a copy of base with the column scattered in."""
        index = self.j.reshape((1,) * self.base.dim()).expand(self.column.shape)
        return torch.scatter(self.base, -1, index, self.column)

    def base_column(self) -> torch.Tensor:
        return self.base.index_select(-1, self.j.reshape(1))

    def pointwise(self, func, rest: tuple, kwargs: dict) -> "OneColumn | None":
        """f(out) for a pointwise f called as ``func(out, *rest, **kwargs)``; None when the call
        carries another tensor or works in place."""
        if kwargs.get("inplace") or (rest and rest[-1] is True and func in _INPLACE_LAST):
            return None
        if any(isinstance(a, torch.Tensor) for a in (*rest, *kwargs.values())):
            return None
        return OneColumn.build(func(self.column, *rest, **kwargs), func(self.base, *rest, **kwargs), self.j)

    def plus(self, vector: torch.Tensor) -> "OneColumn":
        """out + vector, the vector running over the last dimension."""
        return OneColumn.build(self.column + vector.index_select(-1, self.j.reshape(1)),
                               self.base + vector, self.j)

    def times(self, matrix: torch.Tensor, transposed: bool, bias: torch.Tensor | None = None) -> torch.Tensor:
        """``out @ M (+ bias)``, M = matrix or (transposed) matrix.t(): a dense result."""
        if transposed:  # F.linear(out, W, bias): M = W.t(), row j of M is column j of W
            product = F.linear(self.base, matrix, bias)
            row = matrix.index_select(1, self.j.reshape(1)).reshape(-1)
        else:
            product = torch.matmul(self.base, matrix)
            row = matrix.index_select(0, self.j.reshape(1)).reshape(-1)
        return torch.addcmul(product, self.column - self.base_column(), row)  # one pass over K outputs


# F.hardtanh(x, min, max, inplace), F.relu6(x, inplace), F.leaky_relu(x, slope, inplace), ...:
# `inplace` may come positionally as the last argument.
_INPLACE_LAST = {F.relu, F.leaky_relu, F.elu, F.selu, F.celu, F.hardtanh, F.relu6, F.silu, F.mish}

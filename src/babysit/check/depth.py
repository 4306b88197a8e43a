"""Where in the depth of the network each checked tensor sits, read off the autograd graph.

The notes: relative errors grow with depth (1e-2 can be fine for a 10-layer net). To say
where a row sits, the backward graph of the objective is walked from the loss down: a node
that takes a checked matrix directly (``addmm`` of a linear layer, a convolution, a custom
``autograd.Function``, the ``t()`` of ``x @ W.t()``) is a layer. A tensor's layer counts the
layers on the longest path from the loss down to it, so that the input layer is 1 and the
last one before the loss is the deepest number; the depth is the largest count. A vector (a
bias) belongs to the layer whose output it is added to: the one below the node taking it.
"""

from __future__ import annotations

from typing import Mapping

import torch


def layer_positions(out: torch.Tensor, wrt: Mapping[str, torch.Tensor]) -> tuple[int | None, dict[str, int]]:
    """(depth, tensor name -> layer, 1 = next to the input) from the graph behind `out`."""
    if out.grad_fn is None:
        return None, {}
    names = {id(t): name for name, t in wrt.items()}
    matrices = {id(t) for t in wrt.values() if t.dim() >= 2}
    above: dict = {out.grad_fn: 0}  # layer nodes on the longest path from the loss, node excluded
    from_loss: dict[str, tuple[int, bool]] = {}  # name -> (layers above it, taken by a layer node)
    for node in _topological(out.grad_fn):
        inputs = [_through_view(child) for child, _ in node.next_functions if child is not None]
        leaves = [getattr(c, "variable", None) for c in inputs]
        count = above.get(node, 0) + any(v is not None and id(v) in matrices for v in leaves)
        for child, leaf in zip(inputs, leaves):
            if leaf is None:
                above[child] = max(above.get(child, 0), count)
            elif id(leaf) in names and count > from_loss.get(names[id(leaf)], (-1, False))[0]:
                from_loss[names[id(leaf)]] = (count, id(leaf) in matrices or count > above.get(node, 0))
    if not from_loss:
        return None, {}
    depth = max(count for count, _ in from_loss.values())
    if depth == 0:
        return None, {}
    return depth, {name: max(1, depth - count + (1 if own else 0))
                   for name, (count, own) in from_loss.items()}


def _through_view(node):
    """A node with one input that is a leaf (the ``t()`` in ``x @ W.t()``) stands for that leaf."""
    inputs = [child for child, _ in node.next_functions if child is not None]
    if len(inputs) == 1 and hasattr(inputs[0], "variable") and not hasattr(node, "variable"):
        return inputs[0]
    return node


def _topological(root) -> list:
    """The graph's nodes, each after every node that feeds into it from the loss side."""
    seen, order, stack = set(), [], [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if node in seen:
            continue
        seen.add(node)
        stack.append((node, True))
        for child, _ in node.next_functions:
            if child is not None and child not in seen:
                stack.append((child, False))
    return order[::-1]

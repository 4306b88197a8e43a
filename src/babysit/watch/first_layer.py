"""The first layer's weights, as pictures: image tiles for image inputs, a heat map otherwise.

The notes: on image data, draw the first layer's filters — noisy filters hint at a network that
has not converged, a badly set learning rate or too little regularization; smooth, clean and
diverse ones at training that goes well. A fully connected first layer on images is drawn the
same way, each row of W reshaped to the input image. On vector data there is nothing to look
at as a picture, so W is shown as a heat map (units x inputs).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..rundir import RunDir


def first_weight(model: nn.Module) -> tuple[str, torch.Tensor] | None:
    """The first weight matrix or filter bank (2+ dims) in the model's registration order."""
    for name, p in model.named_parameters():
        if p.dim() > 1:
            return name, p
    return None


def as_pictures(weight: np.ndarray, input_shape: tuple | None) -> tuple[str, np.ndarray]:
    """``("tiles", (K, H, W, C))`` when the weights look at images, else ``("heatmap", (K, D))``."""
    weight = as_images(weight, input_shape)
    if weight.ndim == 4 and weight.shape[1] in (1, 3):  # filters, or rows of W as (C, H, W) images
        return "tiles", weight.transpose(0, 2, 3, 1)
    return "heatmap", weight.reshape(weight.shape[0], -1)


def as_images(weight: np.ndarray, input_shape: tuple | None) -> np.ndarray:
    """A fully connected layer's W on image inputs (`input_shape` ``(C, H, W)``, C = 1 or 3)
    as ``(units, C, H, W)``: each row the image it responds to; any other weight as it is."""
    if (weight.ndim == 2 and input_shape is not None and len(input_shape) == 3 and input_shape[0] in (1, 3)
            and int(np.prod(input_shape)) == weight.shape[1]):
        return weight.reshape(weight.shape[0], *input_shape)
    return weight


def snapshot(model: nn.Module, input_shape: tuple | None = None,
             found: tuple[str, torch.Tensor] | None = None) -> tuple[str, bytes] | None:
    """The first layer's name and its weights (:func:`as_images`: drawn like filters with no
    input shape recorded elsewhere) as ``.npy`` bytes, for ``watch/first_layer.npy``. `found`
    is :func:`first_weight`'s answer when the caller has it already."""
    found = found or first_weight(model)
    if found is None:
        return None
    name, weight = found
    return name, npy_bytes(as_images(weight.detach().float().cpu().numpy(), input_shape))


def npy_bytes(array: np.ndarray) -> bytes:
    """`array` in the ``.npy`` format (what ``np.load`` reads), as bytes to write atomically."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def load(run_dir: RunDir | str) -> np.ndarray | None:
    """The weights :func:`snapshot` wrote into ``watch/first_layer.npy``, if any."""
    path = Path(run_dir) / "watch" / "first_layer.npy"
    return np.load(path, allow_pickle=False) if path.exists() else None

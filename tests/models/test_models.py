import math

import pytest
import torch
from torch import nn

from babysit.errors import UserError
from babysit.models import (ACTIVATIONS, Maxout, build_model, chance_loss, convnet, convnet1d,
                            l2_penalty, make_loss, softmax_loss, svm_loss)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_mlp_every_activation_gives_class_scores(activation):
    model = build_model("mlp", (1, 8, 8), 10, depth=3, width=16, activation=activation, dropout=0.1)
    assert model(torch.randn(5, 1, 8, 8)).shape == (5, 10)
    hidden = [m for m in model if isinstance(m, (nn.Linear, Maxout))]
    assert len(hidden) == 4  # three hidden layers + the classifier
    assert any(isinstance(m, nn.Dropout) for m in model)


def test_convnet_keeps_working_on_tiny_and_large_images():
    assert build_model("convnet", (1, 8, 8), 10, depth=2, width=8)(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    assert build_model("convnet", (3, 32, 32), 10, depth=3, width=4)(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(UserError, match="needs image inputs"):
        convnet((40,), 10)


def test_convnet_on_vectors_is_the_1d_convnet():
    """MNIST-1D's (N, 40) signals: depth conv blocks of `width` channels, scores per example."""
    model = build_model("convnet", (40,), 10, depth=3, width=8, dropout=0.1)
    assert model(torch.randn(5, 40)).shape == (5, 10)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv1d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(1, 8), (8, 8), (8, 8)]
    assert any(isinstance(m, nn.Dropout) for m in model)
    # signals with channels (C, D) too, and lengths too short to pool every block
    assert build_model("convnet", (2, 3), 4, depth=3, width=4)(torch.randn(2, 2, 3)).shape == (2, 4)
    with pytest.raises(UserError, match="needs vector inputs"):
        convnet1d((1, 8, 8), 10)


def test_1d_convnet_scores_do_not_depend_on_where_a_pattern_lies():
    """The global average pool: a bump shifted by a whole pooling stride scores alike (the
    templates of MNIST-1D lie anywhere along the signal)."""
    torch.manual_seed(0)
    model = build_model("convnet", (128,), 3, depth=3, width=8).eval()
    signal = torch.zeros(2, 128)
    signal[0, 32:40] = 1.0  # far enough from the ends that no response is cut off there
    signal[1, 64:72] = 1.0  # shifted by 32 = 4 strides of 8 (three pools of 2)
    scores = model(signal)
    assert torch.allclose(scores[0], scores[1], atol=1e-5)


def test_bad_model_input():
    with pytest.raises(UserError, match="unknown model 'resnet'"):
        build_model("resnet", (4,), 3)
    with pytest.raises(UserError, match="unknown activation 'gelu'"):
        build_model("mlp", (4,), 3, activation="gelu")
    with pytest.raises(UserError, match="dropout"):
        build_model("mlp", (4,), 3, dropout=1.5)


def test_init_scale_multiplies_weights_not_biases():
    torch.manual_seed(0)
    a = build_model("mlp", (4,), 3, width=5)
    torch.manual_seed(0)
    b = build_model("mlp", (4,), 3, width=5, init_scale=10.0)
    assert torch.allclose(b[1].weight, 10 * a[1].weight)
    assert torch.allclose(b[1].bias, a[1].bias)


def test_user_model_plugin(tmp_path, monkeypatch):
    (tmp_path / "mymodels.py").write_text(
        "from torch import nn\n"
        "def tiny(input_shape, num_classes, hidden=4):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(input_shape[0], hidden), nn.Linear(hidden, num_classes))\n"
        "def notamodel(input_shape, num_classes):\n    return 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    model = build_model("mymodels:tiny", (6,), 2, kwargs={"hidden": 7})
    assert model[1].out_features == 7
    with pytest.raises(UserError, match="return a torch.nn.Module"):
        build_model("mymodels:notamodel", (6,), 2)


def test_losses_at_chance_equal_the_notes_values():
    scores, targets = torch.zeros(7, 10), torch.arange(7) % 10
    assert softmax_loss(scores, targets).item() == pytest.approx(2.302585, abs=1e-5)
    assert svm_loss(scores, targets).item() == pytest.approx(9.0)
    assert chance_loss("softmax", 10) == pytest.approx(math.log(10))
    assert chance_loss("svm", 10) == 9.0


def test_svm_matches_weston_watkins_by_hand():
    scores = torch.tensor([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]])
    targets = torch.tensor([0, 1, 2])
    # The classic worked example: per-example losses 2.9, 0, 12.9.
    assert svm_loss(scores, targets).item() == pytest.approx((2.9 + 0 + 12.9) / 3, abs=1e-5)


def test_loss_names():
    assert make_loss("softmax") is softmax_loss and make_loss("svm") is svm_loss
    with pytest.raises(UserError, match="unknown loss 'hinge'"):
        make_loss("hinge")
    with pytest.raises(UserError, match="cannot import"):
        make_loss("nope_nope:loss")


def test_l2_penalty_is_separate_and_skips_biases():
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    expected = 0.5 * 0.1 * sum((p ** 2).sum() for n, p in model.named_parameters() if n.endswith("weight"))
    assert l2_penalty(model, 0.1).item() == pytest.approx(expected.item())
    assert l2_penalty(model, 0.0).item() == 0.0
    penalty = l2_penalty(model, 0.1)
    penalty.backward()
    assert torch.allclose(model[0].weight.grad, 0.1 * model[0].weight)
    assert model[0].bias.grad is None

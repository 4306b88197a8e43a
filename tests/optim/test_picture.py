"""`babysit optimizers`: the paths picture is a real PNG with content; the GIF animates."""

import numpy as np
from PIL import Image

from babysit import cli
from babysit.optim import FIRST_ORDER
from babysit.optim.paths import all_paths


def test_paths_show_the_rules_character():
    paths = all_paths()
    valley, saddle = paths["valley"], paths["saddle"]
    assert set(valley) == set(FIRST_ORDER) == set(saddle)
    # on the saddle, the per-parameter rules escape (leave the picture) long before SGD does
    assert len(saddle["rmsprop"]) < len(saddle["sgd"]) / 2
    assert len(saddle["adagrad"]) < len(saddle["sgd"]) / 2
    # in the valley, SGD zig-zags across: its y changes sign at almost every early step
    signs = np.sign(valley["sgd"][1:15, 1])
    assert (signs[1:] != signs[:-1]).sum() >= 10
    # momentum gets further along the floor in the first 10 steps than SGD does
    assert valley["momentum"][10, 0] < valley["sgd"][10, 0] - 0.5 or \
        abs(valley["momentum"][10, 0]) < abs(valley["sgd"][10, 0])


def test_cli_writes_a_png_with_content(tmp_path, capsys):
    out = tmp_path / "pics" / "paths.png"
    assert cli.main(["optimizers", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = np.asarray(Image.open(out).convert("RGB"))
    assert image.shape[0] > 300 and image.shape[1] > 600
    colors = {tuple(c) for c in image.reshape(-1, 3)[::7]}
    assert len(colors) > 200  # contours, six coloured paths, text: not a blank canvas
    # every rule's colour is drawn somewhere (the legend alone would be a few pixels)
    from babysit.optim.plot import COLORS
    for rule, hex_colour in COLORS.items():
        rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
        assert (np.abs(image.astype(int) - rgb).sum(axis=2) < 30).sum() > 50, rule


def test_animation_is_a_gif_with_frames(tmp_path):
    from babysit.optim.plot import save_gif
    out = save_gif(tmp_path / "paths.gif", frames=4)
    with Image.open(out) as gif:
        assert gif.format == "GIF" and gif.n_frames == 4

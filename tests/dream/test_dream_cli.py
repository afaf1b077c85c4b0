"""`genfast dream run|filters|patches`: outputs written, bad options exit 2 naming the option."""

import pytest

from genfast import io
from genfast.cli import main


def test_run_filters_and_patches_write_their_pictures(tmp_path, capsys, lite0):
    pytest.importorskip("skimage")
    assert main(["dream", "run", "skimage:coffee", "-o", str(tmp_path / "d.jpg"), "--size", "64", "--octaves", "2",
                 "--steps", "1", "--layers", "block2=1", "block3=0.5", "--save-octaves", "--quiet"]) == 0
    assert (tmp_path / "d.jpg").is_file() and (tmp_path / "d_octave0.jpg").is_file()
    assert main(["dream", "filters", "block1", "-o", str(tmp_path / "f.png"), "--channels", "0", "3",
                 "--size", "32", "--steps", "1", "--quiet"]) == 0
    assert main(["dream", "patches", "skimage:coffee", "skimage:chelsea", "--layer", "block1", "--units", "2",
                 "--size", "48", "-o", str(tmp_path / "p.png"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert out.count("wrote") == 3 and io.load_image(tmp_path / "p.png").shape[-1] > 48


@pytest.mark.parametrize("argv, message", [
    (["--octave-scale", "0.9"], "--octave-scale: expected a number > 1"),
    (["--layers", "blocks.4"], "layers: unknown layer 'blocks.4' for EfficientNetLite0; known layers: stem"),
    (["--octaves", "9"], "IMAGE: the image is 64x43: 9 octaves of scale 1.4 need at least"),
])
def test_bad_options_exit_2_with_the_option_named(tmp_path, capsys, argv, message, lite0):
    pytest.importorskip("skimage")
    code = main(["dream", "run", "skimage:coffee", "-o", str(tmp_path / "d.png"), "--size", "64", "--quiet",
                 "--network", "efficientnet_lite0", *argv])
    assert code == 2 and message in capsys.readouterr().err


def test_steps_must_not_be_negative(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["dream", "run", "skimage:coffee", "-o", str(tmp_path / "d.png"), "--steps", "-1"])
    assert e.value.code == 2 and "--steps" in capsys.readouterr().err

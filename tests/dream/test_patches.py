"""genfast.dream.top_patches: the streamed top 9 equals a brute-force search, the patches are the
receptive fields, unreadable files are skipped by name."""

import pytest
import torch

from genfast import io
from genfast.dream import receptive_field as rf
from genfast.dream.patches import cut_patch, top_patches


@pytest.fixture
def folder(tmp_path):
    pytest.importorskip("skimage")
    for i, name in enumerate(["astronaut", "chelsea", "coffee", "rocket", "brick"]):
        io.save_image(io.load_image(f"skimage:{name}", 64 + 8 * i), tmp_path / f"{i}_{name}.png")
    return tmp_path


def test_streamed_top_equals_brute_force(lite0, folder):
    layer, units, top = "block2", 5, 4
    r = top_patches(folder, layer, network=lite0, units=units, top=top, size=None, progress=False)
    best = []                                # (value, file, y, x) of each image's best position per unit
    for f in sorted(folder.glob("*.png")):
        feat = lite0(io.load_image(f), [layer])[layer][0, :units].flatten(1)
        v, i = feat.max(dim=1)
        w = lite0(io.load_image(f), [layer])[layer].shape[-1]
        best.append([(v[u].item(), str(f), *divmod(i[u].item(), w)) for u in range(units)])
    for u in range(units):
        want = sorted((b[u] for b in best), key=lambda t: -t[0])[:top]
        torch.testing.assert_close(r.values[u], torch.tensor([t[0] for t in want]))
        assert [tuple(s) for s in r.sources[u]] == [t[1:] for t in want]
    assert r.images == 5 and r.patches.shape == (units, top, 3, 48, 48)


def test_per_image_lets_one_image_give_several_patches(lite0, folder):
    r = top_patches(folder / "2_coffee.png", "block2", network=lite0, units=2, per_image=9, size=None,
                    progress=False)
    assert all(torch.isfinite(r.values[u]).all() for u in range(2))
    assert r.values[0].diff().le(0).all()                # descending


def test_a_patch_is_the_units_receptive_field(lite0):
    image = torch.rand(1, 3, 80, 90, generator=torch.Generator().manual_seed(0))
    rows, cols = rf.geometry(lite0, "block3", (80, 90))
    y, x = 4, 5                                          # interior: the whole field lies inside
    (t, b), (l, r) = rows.span(y), cols.span(x)
    assert (b - t, r - l) == (rows.size, cols.size)
    patch = cut_patch(image, (t, l, b, r), (rows.size, cols.size), (0, 0), rows.size)
    torch.testing.assert_close(patch, image[0, :, t:b, l:r])
    # at the border the field is clipped and the rest is grey, keeping the unit at the centre
    (t, b), (l, r) = rows.span(0), cols.span(0)
    off = (t - rows.first, l - cols.first)
    patch = cut_patch(image, (t, l, b, r), (rows.size, cols.size), off, rows.size)
    assert off[0] > 0 and torch.all(patch[:, :off[0]] == 0.5)
    torch.testing.assert_close(patch[:, off[0]:, off[1]:], image[0, :, t:b, l:r])


def test_unreadable_files_are_skipped_by_name(lite0, folder, tmp_path):
    (folder / "broken.png").write_bytes(b"not a png")
    with pytest.warns(RuntimeWarning, match="skipped 1 unreadable file.*broken.png"):
        r = top_patches(folder, "block1", network=lite0, units=2, size=48, output=tmp_path / "out" / "sheet.png",
                        progress=False)
    assert r.images == 5 and r.skipped and r.output.is_file()


def test_bad_input_is_refused_by_name(lite0, folder):
    with pytest.raises(ValueError, match="units: block1 has 24 channels, asked for the first 30"):
        top_patches(folder, "block1", network=lite0, units=30, size=32, progress=False)
    with pytest.raises(ValueError, match="layer: unknown layer"):
        top_patches(folder, "block99", network=lite0, progress=False)
    with pytest.raises(ValueError, match="output: .* is the source file"):
        top_patches(folder, "block1", network=lite0, output=folder / "0_astronaut.png", progress=False)

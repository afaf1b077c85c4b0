"""Smoke test, also run against the CPU-only torch build (make check-cpu-torch)."""

import pytest
import torch

import genfast
from genfast import ops


@pytest.mark.parametrize("op", ["gram_matrix", "gram_matrix_backward", "style_loss", "style_loss_backward",
                                "instance_norm", "instance_norm_backward",
                                "minibatch_stddev", "minibatch_stddev_backward"])
def test_native_loaded_and_cpu_kernels_registered(op):
    assert genfast.load_error() is None, genfast.load_error()
    assert genfast.native_available(op, "cpu")


def test_every_op_runs_natively_and_matches_its_reference():
    x = torch.randn(4, 6, 5, 3, generator=torch.Generator().manual_seed(3))
    w, b = torch.rand(6) + 0.5, torch.randn(6)
    got = ops.instance_norm(x, w, b, activation="relu", impl="native")
    want = ops.instance_norm(x.double(), w.double(), b.double(), activation="relu", impl="reference")
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-5)
    got = ops.minibatch_stddev(x, group_size=2, impl="native")
    want = ops.minibatch_stddev(x.double(), group_size=2, impl="reference")
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-6)


def test_cuda_kernels_match_the_torch_build():
    # a CPU-only torch must give a CPU-only genfast; a CUDA torch with a toolkit builds both
    if torch.version.cuda is None:
        assert not genfast.native_available("gram_matrix", "cuda")
        assert "cuda=off" in genfast.build_info()


@pytest.mark.parametrize("normalize", ["none", "hw", "chw"])
def test_native_matches_reference(normalize):
    x = torch.randn(2, 19, 7, 9, generator=torch.Generator().manual_seed(1))
    t = torch.randn(19, 19, generator=torch.Generator().manual_seed(2))
    got = ops.gram_matrix(x, normalize=normalize, impl="native")
    want = genfast.reference.gram_matrix(x.double(), normalize)
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-5 * want.abs().max().item())
    xn = x.clone().requires_grad_()
    xr = x.double().requires_grad_()
    ops.style_loss(xn, t, normalize=normalize, impl="native").backward()
    genfast.reference.style_loss(xr, t.double(), normalize).backward()
    torch.testing.assert_close(xn.grad.double(), xr.grad, rtol=1e-4, atol=1e-5 * xr.grad.abs().max().item())

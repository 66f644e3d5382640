import pytest
import torch

from workbench.core.model import analyze, build_model, check
from workbench.spec import LayerSpec, SpecError


def L(t, **p):  # noqa: N802
    return LayerSpec(t, p)


CNN = [L("Conv2d", out=8, kernel=3, padding=1), L("BatchNorm"), L("ReLU"), L("MaxPool2d"),
       L("Conv2d", out=16, kernel=3), L("ReLU"), L("AvgPool2d", kernel=2), L("Flatten"),
       L("Dropout", p=0.2), L("Linear", out=10)]


def test_shapes_and_counts_match_the_built_model():
    report = check(CNN, (1, 28, 28), 10)
    model = build_model(CNN, (1, 28, 28))
    x = torch.zeros(2, 1, 28, 28)
    for layer_report, module in zip(report.layers, model, strict=True):
        x = module(x)
        assert tuple(x.shape[1:]) == layer_report.out_shape
        assert sum(p.numel() for p in module.parameters()) == layer_report.params
    assert report.total_params == sum(p.numel() for p in model.parameters())
    assert report.output_shape == (10,)
    assert report.param_bytes == 4 * report.total_params


def test_macs_of_linear_and_conv():
    report = check([L("Flatten"), L("Linear", out=256), L("ReLU"), L("Linear", out=10)],
                   (1, 28, 28), 10)
    assert report.layers[1].macs == 784 * 256
    conv = check([L("Conv2d", out=4, kernel=3), L("Flatten"), L("Linear", out=2)], (3, 8, 8), 2)
    assert conv.layers[0].macs == 3 * 9 * 4 * 6 * 6


def test_batchnorm_picks_1d_or_2d():
    m = build_model([L("Flatten"), L("BatchNorm"), L("Linear", out=2)], (1, 4, 4))
    assert isinstance(m[1], torch.nn.BatchNorm1d)
    m2 = build_model([L("Conv2d", out=3), L("BatchNorm")], (1, 8, 8))
    assert isinstance(m2[1], torch.nn.BatchNorm2d)


def test_linear_after_conv_without_flatten_names_layer_and_shapes():
    layers = [L("Conv2d", out=8, kernel=3), L("Linear", out=10)]
    report = analyze(layers, (1, 28, 28), 10)
    assert not report.ok
    assert report.error.path == "model.layers[1]"
    assert "layer 2 (Linear)" in str(report.error) and "got 8×26×26" in str(report.error)
    assert "Flatten" in str(report.error)
    assert report.layers[1].out_shape is None
    assert report.layers[0].out_shape == (8, 26, 26)


def test_kernel_larger_than_input():
    with pytest.raises(SpecError, match=r"model\.layers\[1\], layer 2 \(Conv2d\): Conv2d kernel "
                                        r"7×7 is larger than its padded input 4×4"):
        check([L("Conv2d", out=4, kernel=5), L("Conv2d", out=4, kernel=7)], (1, 8, 8), None)
    with pytest.raises(SpecError, match=r"MaxPool2d window 4×4 is larger than its input 2×2"):
        check([L("MaxPool2d", kernel=4), L("MaxPool2d", kernel=4)], (1, 8, 8), None)


def test_output_width_must_match_classes():
    with pytest.raises(SpecError, match=r"model\.layers\[0\], layer 1 \(Linear\): the network "
                                        r"ends with shape 3 but the dataset has 2 classes; "
                                        r"make the last Linear's out 2"):
        check([L("Linear", out=3)], (2,), 2)
    with pytest.raises(SpecError, match="regression target"):
        check([L("Linear", out=3)], (1,), 0)
    assert check([L("Linear", out=1)], (1,), 0).ok


def test_conv_on_flat_input():
    report = analyze([L("Conv2d")], (2,), 2)
    assert "image input" in report.layers[0].error

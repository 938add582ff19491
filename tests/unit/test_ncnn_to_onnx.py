"""converters/ncnn_to_onnx.py on small ncnn models written here, checked against numpy's arithmetic.

The real models (Real-ESRGAN x4plus and animevideov3) are checked against ncnn's own runtime in
tests/integration/test_upscale_parity.py; these cover each layer's semantics and the .bin format on their own.
"""

import struct

import numpy as np
import onnxruntime as ort
import pytest

from converters.errors import ConversionError
from converters.ncnn_to_onnx import FLAG_FLOAT16, convert_ncnn, parse_param

RNG = np.random.default_rng(7)


def flagged_fp16(values: np.ndarray) -> bytes:
    raw = values.astype("<f2").tobytes()
    return struct.pack("<I", FLAG_FLOAT16) + raw + b"\0" * (-len(raw) % 4)


def flagged_fp32(values: np.ndarray) -> bytes:
    return struct.pack("<I", 0) + values.astype("<f4").tobytes()


def conv(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, pad: int) -> np.ndarray:
    """Cross-correlation, stride 1, zero padding: the reference for ncnn's Convolution."""
    _, kh, kw = weight.shape[1:]
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    height, width = padded.shape[2] - kh + 1, padded.shape[3] - kw + 1
    out = sum(np.einsum("oi,nihw->nohw", weight[:, :, i, j], padded[:, :, i:i + height, j:j + width])
              for i in range(kh) for j in range(kw))
    return out + (0 if bias is None else bias[None, :, None, None])


def run(model_bytes: bytes, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    return session.run(None, {"image": x})[0]


# SRVGGNetCompact's shape: a convolution with LeakyReLU, PReLU, a pixel shuffle, plus a nearest-upsampled skip
UPSCALER = """7767517
7 8
Input            in        0 1 data
Split            split     1 2 data d0 d1
Convolution      conv      1 1 d0 c 0=12 1=3 4=1 5=1 6=324 9=2 -23310=1,1.000000e-01
PReLU            prelu     1 1 c p 0=12
PixelShuffle     shuffle   1 1 p s 0=2
Interp           up        1 1 d1 u 0=1 1=2.000000e+00 2=2.000000e+00
BinaryOp         add       2 1 s u output 0=0
"""


def test_upscaler_layers_match_numpy() -> None:
    weight = RNG.normal(0, 0.3, (12, 3, 3, 3)).astype(np.float16).astype(np.float32)  # stored as FP16
    bias, slope = RNG.normal(0, 0.1, 12).astype(np.float32), RNG.uniform(0, 0.5, 12).astype(np.float32)
    model = convert_ncnn(UPSCALER, flagged_fp16(weight) + bias.tobytes() + slope.tobytes())
    x = RNG.uniform(0, 1, (2, 3, 5, 7)).astype(np.float32)

    c = conv(x, weight, bias, pad=1)
    c = np.where(c > 0, c, 0.1 * c)  # LeakyReLU fused into the convolution
    c = np.where(c > 0, c, slope[None, :, None, None] * c)
    shuffled = c.reshape(2, 3, 2, 2, 5, 7).transpose(0, 1, 4, 2, 5, 3).reshape(2, 3, 10, 14)  # PyTorch's order
    expected = np.clip(shuffled + x.repeat(2, axis=2).repeat(2, axis=3), 0, 1)
    out = run(model.SerializeToString(), x)
    assert out.shape == (2, 3, 10, 14)
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert 0.0 < expected.mean() < 1.0 and (expected == 0).any() and (expected == 1).any()  # the clip is exercised


# RRDBNet's dense connections: Concat along channels and a residual Eltwise SUM with coefficients
DENSE = """7767517
6 8
Input            in        0 1 data
Split            split     1 3 data d0 d1 d2
Convolution      conv1     1 1 d0 a 0=2 1=1 5=0 6=6
Concat           cat       2 1 d1 a ca
Convolution      conv2     1 1 ca b 0=3 1=1 5=1 6=15
Eltwise          res       2 1 b d2 output 0=1 -23301=2,2.000000e-01,1.000000e+00
"""


def test_dense_block_layers_match_numpy() -> None:
    w1, w2 = RNG.normal(0, 0.5, (2, 3, 1, 1)).astype(np.float32), RNG.normal(0, 0.5, (3, 5, 1, 1)).astype(np.float32)
    b2 = RNG.normal(0, 0.1, 3).astype(np.float32)
    model = convert_ncnn(DENSE, flagged_fp32(w1) + flagged_fp32(w2) + b2.tobytes())
    x = RNG.uniform(0.2, 0.8, (1, 3, 4, 6)).astype(np.float32)
    a = conv(x, w1, None, pad=0)
    expected = np.clip(0.2 * conv(np.concatenate([x, a], axis=1), w2, b2, pad=0) + x, 0, 1)
    np.testing.assert_allclose(run(model.SerializeToString(), x), expected, atol=1e-5)


def test_params_are_typed_and_arrays_read() -> None:
    conv_layer = parse_param(UPSCALER)[2]
    assert conv_layer.params == {0: 12, 1: 3, 4: 1, 5: 1, 6: 324, 9: 2, 10: [0.1]}
    assert conv_layer.inputs == ("d0",) and conv_layer.outputs == ("c",)


def test_unsupported_layers_and_parameters_are_named() -> None:
    with pytest.raises(ConversionError, match=r"layer types \['Sigmoid'\] are not supported"):
        convert_ncnn(UPSCALER.replace("PReLU            prelu     1 1 c p 0=12", "Sigmoid sig 1 1 c p"), b"")
    bicubic = UPSCALER.replace("Interp           up        1 1 d1 u 0=1", "Interp           up        1 1 d1 u 0=3")
    weights = flagged_fp16(np.zeros(324)) + bytes(4 * 24)
    with pytest.raises(ConversionError, match=r"'up' \(Interp\): resize_type 3 is not supported"):
        convert_ncnn(bicubic, weights)
    with pytest.raises(ConversionError, match="not an ncnn text .param"):
        convert_ncnn("7767518\n0 0\n", b"")


def test_a_bin_that_does_not_belong_to_the_param_is_refused() -> None:
    good = flagged_fp16(np.zeros(324)) + bytes(4 * 24)
    convert_ncnn(UPSCALER, good)
    with pytest.raises(ConversionError, match="bytes left after the last layer"):
        convert_ncnn(UPSCALER, good + bytes(4))
    with pytest.raises(ConversionError, match="ends at byte"):
        convert_ncnn(UPSCALER, good[:-4])
    int8 = struct.pack("<I", 0x000D4B38) + good[4:]
    with pytest.raises(ConversionError, match="storage flag 0x000d4b38"):
        convert_ncnn(UPSCALER, int8)

"""The Real-ESRGAN models converted from ncnn (converters/ncnn_to_onnx.py) agree with ncnn's own CPU runtime
(the ``ncnn`` wheel) on crops of real photos.

ncnn runs with float32 storage and arithmetic: its reference numerics, from the same FP16-stored weights the
converter widens to float32. Crop sizes are not multiples of 8 or 16, so no packing path hides a layout error.
"""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import skimage.data

from converters.build import convert
from converters.catalog import get_source
from converters.fetch import fetch_source, weights_path

ncnn = pytest.importorskip("ncnn", reason="the ncnn wheel is in the dev extra (pyproject.toml)")

pytestmark = pytest.mark.integration

# Measured (ONNX Runtime 1.31 vs ncnn 1.0.20261020, float32, 2-core x86): max abs difference in [0, 1] units
# 5.0e-6 for upscale_sharp and 1.2e-6 for upscale_fast over these crops (ncnn's default options gave the same
# numbers on this CPU, which has no FP16 arithmetic); the bound leaves room for other kernels' summation order
# and is still far below one 8-bit level (3.9e-3).
MAX_ABS_DIFF = 2e-5
# (photo, top, left, height, width): a face, a cup's rim, a cat's fur and eye
CROPS = {
    "upscale_fast": [("astronaut", 90, 190, 64, 64), ("coffee", 150, 250, 96, 80), ("chelsea", 80, 150, 72, 88)],
    "upscale_sharp": [("astronaut", 90, 190, 40, 56), ("coffee", 150, 250, 56, 48), ("chelsea", 80, 150, 48, 40)],
}


def crop(photo: str, top: int, left: int, height: int, width: int) -> np.ndarray:
    rgb = getattr(skimage.data, photo)()[top:top + height, left:left + width]
    return np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32) / 255.0


def ncnn_upscale(net: "ncnn.Net", chw: np.ndarray) -> np.ndarray:
    extractor = net.create_extractor()
    blob = ncnn.Mat(chw)  # ncnn.Mat reads the array's memory: keep it referenced until extract returns
    extractor.input("data", blob)
    status, out = extractor.extract("output")
    assert status == 0
    return np.array(out)


@pytest.mark.parametrize("name", sorted(CROPS))
def test_converted_model_matches_ncnn_on_real_photos(name: str) -> None:
    source = get_source(name)
    param = fetch_source(source)
    model = convert(source, param)
    assert [i.name for i in model.graph.input] == ["image"] and [o.name for o in model.graph.output] == ["rgb"]
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[1].dim_value == 3 and all(d.dim_param for d in (dims[0], dims[2], dims[3]))  # dynamic N, H, W
    assert all(t.data_type == onnx.TensorProto.FLOAT for t in model.graph.initializer)
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 2, 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])

    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.num_threads = 2
    net.opt.use_fp16_storage = net.opt.use_fp16_arithmetic = net.opt.use_fp16_packed = False
    net.opt.use_bf16_storage = False
    assert net.load_param(str(param)) == 0 and net.load_model(str(weights_path(source, param))) == 0

    for photo, *box in CROPS[name]:
        chw = crop(photo, *box)
        ours = session.run(None, {"image": chw[None]})[0][0]
        reference = np.clip(ncnn_upscale(net, chw), 0.0, 1.0)  # our graph clips to [0, 1]; ncnn's does not
        assert ours.shape == reference.shape == (3, 4 * chw.shape[1], 4 * chw.shape[2])
        difference = float(np.abs(ours - reference).max())
        assert difference <= MAX_ABS_DIFF, f"{name} on {photo}: max abs difference {difference:.2e}"
        assert ours.std() > 0.05  # a real picture, not a flat one

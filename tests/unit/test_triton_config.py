import io
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from contract.product import PRODUCT
from contract.schema import Variant
from converters.build import write_configs
from converters.catalog import load_catalog
from converters.errors import ConverterError
from converters.tensorrt import trtexec_commands
from converters.triton_config import model_config, repository_configs, to_pbtxt
from tests.unit.app_client import with_variant

REPO = Path(__file__).resolve().parents[2]
COMMITTED = {"cpu": REPO / "model_repository", "gpu": REPO / "model_repository_gpu"}


def generated_files(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): path.read_text()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.suffix in (".pbtxt", ".py")
    }


@pytest.mark.parametrize("target", ["cpu", "gpu"])
def test_committed_configs_match_the_generator(target: str, tmp_path: Path) -> None:
    write_configs(tmp_path, load_catalog(), target)
    fresh = generated_files(tmp_path)
    committed = generated_files(COMMITTED[target])
    assert sorted(fresh) == sorted(committed), "run `make configs` and commit the result"
    for name, text in fresh.items():
        assert committed[name] == text, f"{name} is stale: run `make configs` and commit the result"


def test_ensembles_cover_every_declared_operation_and_variant() -> None:
    configs = repository_configs(load_catalog(), "cpu")
    ensembles = [name for name, config in configs.items() if config.get("platform") == "ensemble"]
    variants = ["auto", "fast", "portrait", "object", "object-lite"]
    edits = ["depth", "mask", "cutout", "background", "bokeh", "adjust", "crop", "style"]
    # a mask with a fixed matte: the subject without the faces step, and its twin with it for the face layers
    with_twins = [name for op in edits for v in variants
                  for name in ([f"photo_{op}_{v}", f"photo_{op}_{v}_faces"] if op == "mask" and v != "auto"
                               else [f"photo_{op}_{v}"])]
    assert ensembles == [*with_twins, "photo_upscale_quality",
                         "photo_upscale_sharp", "photo_upscale_fast", "photo_erase",
                         *(f"photo_erase_{v}" for v in variants), *(f"photo_layers_{v}" for v in variants),
                         *(f"photo_select_{v}" for v in variants)]
    # erase with an uploaded mask runs no matte; at a tap, the faces and the chosen matte select the region.
    tapped = configs["photo_erase_auto"]["ensemble_scheduling"]["step"]
    assert [step["model_name"] for step in tapped] == ["preprocess", "faces", "matte_auto", "postprocess"]
    # auto: the faces step, then the choice step, which calls one of the two mattes (neither is a step of its own)
    auto = configs["photo_cutout_auto"]["ensemble_scheduling"]["step"]
    assert [step["model_name"] for step in auto] == ["preprocess", "faces", "matte_auto", "postprocess"]
    # ... and, for the portrait matte, its gate (MediaPipe's person matte)
    assert {"MATTE_PORTRAIT_INPUT", "MATTE_OBJECT_INPUT", "MATTE_FAST_INPUT", "RGB"} <= set(auto[0]["output_map"])
    assert auto[2]["input_map"]["MATTE_FAST_INPUT"] == auto[0]["output_map"]["MATTE_FAST_INPUT"]
    assert configs["matte_auto"]["parameters"]["gate"]["string_value"] == "matte_fast"
    assert auto[2]["input_map"]["FACES"] == auto[1]["output_map"]["FACES"]
    assert auto[3]["input_map"]["ALPHA"] == auto[2]["output_map"]["ALPHA"]
    assert "FACES" not in auto[3]["input_map"]  # the cutout itself needs no faces
    assert configs["matte_auto"]["parameters"]["with_face"]["string_value"] == "matte_portrait"
    assert configs["matte_auto"]["parameters"]["without_face"]["string_value"] == "matte_object"
    # A fixed matte with the faces step for the compose step's face layers, and its twin without them.
    mask = configs["photo_mask_fast_faces"]["ensemble_scheduling"]["step"]
    assert [step["model_name"] for step in mask] == ["preprocess", "faces", "matte_fast", "postprocess"]
    assert mask[-1]["input_map"]["FACES"] == mask[1]["output_map"]["FACES"]
    plain = configs["photo_mask_fast"]["ensemble_scheduling"]["step"]
    assert [step["model_name"] for step in plain] == ["preprocess", "matte_fast", "postprocess"]
    assert "FACES" not in plain[-1]["input_map"]
    models = json.loads(configs["faces"]["parameters"]["models"]["string_value"])
    assert [models[role]["name"] for role in ("detector", "landmarks", "irises")] == list(PRODUCT.face_models)
    # The portrait matte and its gate run side by side; the gate's matte reaches the compose step as MATTE_GATE.
    cutout = configs["photo_cutout_portrait"]["ensemble_scheduling"]["step"]
    assert [step["model_name"] for step in cutout] == ["preprocess", "matte_portrait", "matte_fast", "postprocess"]
    assert cutout[3]["input_map"]["MATTE_GATE"] == cutout[2]["output_map"]["alpha"]
    assert cutout[3]["input_map"]["ALPHA"] == cutout[1]["output_map"]["alpha"]
    assert "MATTE_GATE" not in plain[-1]["input_map"]  # the fast matte itself is not gated
    assert "RGB" in cutout[0]["output_map"] and "RGB" in cutout[3]["input_map"]  # the cutout composes the pixels
    assert "MAX_SIDE" in cutout[0]["input_map"] and "FORMAT" in cutout[3]["input_map"]  # each parameter to its step
    assert "FORMAT" not in cutout[0]["input_map"] and "MAX_SIDE" not in cutout[3]["input_map"]
    assert [o["name"] for o in configs["photo_depth_portrait"]["output"]] == ["DEPTH_IMAGE", "DEPTH_RANGE", "SUBJECT"]
    bokeh = configs["photo_bokeh_object"]["ensemble_scheduling"]["step"]
    assert [step["model_name"] for step in bokeh] == ["preprocess", "depth", "matte_object", "postprocess"]
    background = configs["photo_background_portrait"]
    assert "NEW_BACKGROUND" in {i["name"] for i in background["input"]}  # the uploaded background reaches it
    assert background["ensemble_scheduling"]["step"][-1]["input_map"]["NEW_BACKGROUND"] == "NEW_BACKGROUND"
    # A pixel model takes the photo and its step's parameters, and hands its pixels to the compose step.
    style = configs["photo_style_portrait"]["ensemble_scheduling"]["step"]
    assert [step["model_name"] for step in style] == ["preprocess", "style", "matte_portrait", "matte_fast",
                                                       "postprocess"]
    # the style name and the style image go to the style step, not the compose step
    assert style[1]["input_map"] == {"RGB": "rgb", "STYLE": "STYLE", "STYLE_SOURCE": "STYLE_SOURCE"}
    assert "STYLE" not in style[-1]["input_map"] and "STYLE_SOURCE" not in style[-1]["input_map"]
    assert style[-1]["input_map"]["MODEL_RGB"] == style[1]["output_map"]["MODEL_RGB"]
    assert "STYLE_INPUT" not in configs["preprocess"]["parameters"]["model_inputs"]["string_value"]
    erase = configs["photo_erase"]["ensemble_scheduling"]["step"]  # no model: the photo and the mask part
    assert [step["model_name"] for step in erase] == ["preprocess", "postprocess"]
    assert erase[-1]["input_map"]["ERASE_MASK"] == "ERASE_MASK"
    crop = configs["photo_crop_portrait"]
    assert {o["name"]: o["dims"] for o in crop["output"]} == {"CROP_IMAGE": [1], "CROP_BOX": [4], "SUBJECT": [1]}


def test_a_declared_variant_is_all_it_takes_for_an_ensemble() -> None:
    product = with_variant(PRODUCT, "cutout", Variant("sharp", ("matte_object_lite",), "test-only variant"))
    configs = repository_configs(load_catalog(), "cpu", product)
    steps = configs["photo_cutout_sharp"]["ensemble_scheduling"]["step"]
    assert [step["model_name"] for step in steps] == ["preprocess", "matte_object_lite", "postprocess"]
    assert "photo_cutout_sharp" not in repository_configs(load_catalog(), "cpu")


def test_a_declared_model_missing_from_the_catalog_is_refused() -> None:
    product = with_variant(PRODUCT, "mask", Variant("ghost", ("matte_ghost",), "not in the catalog"))
    with pytest.raises(ConverterError, match=r"matte_ghost.*catalog.toml"):
        repository_configs(load_catalog(), "cpu", product)


def test_steps_enforce_the_declared_pixel_limit() -> None:
    preprocess = repository_configs(load_catalog(), "cpu")["preprocess"]
    assert preprocess["parameters"]["max_pixels"]["string_value"] == str(PRODUCT.limits.max_pixels)


def test_model_steps_batch_dynamically_and_pixel_models_take_one_photo() -> None:
    catalog = load_catalog()
    for target in ("cpu", "gpu"):
        for source in catalog.values():
            config = model_config(source, target, catalog)
            if source.output == "rgb":  # the photo at its own size: its step tiles or resizes it
                assert config["max_batch_size"] == 1 and config["backend"] == "python"
                assert [i["name"] for i in config["input"]][0] == "RGB" and config["output"][0]["name"] == "MODEL_RGB"
                continue
            assert config["max_batch_size"] > 1
            assert "dynamic_batching" in config
            if source.output == "tensors":  # every face (and both eyes of each) of a photo in one call
                assert config["max_batch_size"] >= 2 * PRODUCT.max_faces
                assert [o["name"] for o in config["output"]] == list(source.output_shapes)


def test_cpu_layouts_follow_the_tuning_with_the_heavy_mattes_as_the_exception() -> None:
    configs = repository_configs(load_catalog(), "cpu")
    layouts = {name: (configs[name]["instance_group"][0]["count"],
                      configs[name]["parameters"]["intra_op_threads"]["string_value"],
                      configs[name]["parameters"]["intra_op_spinning"]["string_value"])
               for name, source in load_catalog().items() if source.output != "rgb" and name in PRODUCT.models()}
    assert layouts == {"depth": (2, "1", "0"), "matte_fast": (2, "1", "0"), "matte_portrait": (1, "2", "0"),
                       "matte_object": (1, "2", "0"), "matte_object_lite": (1, "2", "0"),
                       "style_predict": (2, "1", "0"), "style_transform": (1, "2", "0"),
                       **dict.fromkeys(PRODUCT.face_models, (2, "1", "0"))}


def test_the_style_step_calls_the_arbitrary_style_pair_which_takes_any_photo_size() -> None:
    catalog = load_catalog()
    for target in ("cpu", "gpu"):
        configs = repository_configs(catalog, target)
        calls = json.loads(configs["style"]["parameters"]["calls"]["string_value"])
        assert calls == [
            {"name": "style_predict", "inputs": ["style_image"], "outputs": ["style_vector"], "size": [256, 256]},
            {"name": "style_transform", "inputs": ["content", "style_vector"], "outputs": ["stylized"],
             "size": [1024, 1024]},
        ]
        assert {"name": "STYLE_SOURCE", "data_type": "TYPE_STRING", "dims": [1], "optional": True} in \
            configs["style"]["input"]
        transform = configs["style_transform"]
        assert [(i["name"], i["dims"]) for i in transform["input"]] == [("content", [-1, -1, 3]),
                                                                       ("style_vector", [1, 1, 100])]
        warmup = transform["model_warmup"][0]["inputs"]
        assert warmup["content"]["dims"] == [64, 64, 3] and warmup["style_vector"]["dims"] == [1, 1, 100]
        if target == "gpu":  # free sizes: no TensorRT engine per size; the predictor's fixed size keeps it
            assert "optimization" not in transform and "optimization" in configs["style_predict"]
    assert configs["upscale_fast"]["parameters"]["calls"]["string_value"] == "[]"


def test_postprocess_warms_up_every_output_at_a_real_output_size(tmp_path: Path) -> None:
    warmup = repository_configs(load_catalog(), "cpu")["postprocess"]["model_warmup"][0]["inputs"]
    parameters = {p.tensor for p in PRODUCT.compose_parameters()}
    parts = {part.tensor for part in PRODUCT.image_parts()}
    assert set(warmup) == {"OUTPUT_SIZE", "PHOTO_SIZE", "DEPTH", "ALPHA", "RGB", "MODEL_RGB", "FACES", *parameters,
                           *parts}
    assert warmup["FACES"]["zero_data"]  # no face: every face layer is made, empty
    write_configs(tmp_path, load_catalog(), "cpu")
    folder = tmp_path / "postprocess" / "warmup"
    height, width = struct.unpack("<2i", (folder / "output_size").read_bytes())
    assert warmup["RGB"]["dims"] == [height, width, 3]  # the cutout needs RGB at the output size
    assert warmup["MODEL_RGB"]["dims"] == [height * 4, width * 4, 3]  # as the 4x upscaler makes it
    mask = Image.open(io.BytesIO((folder / "input_erase_mask").read_bytes()[4:]))
    assert np.asarray(mask).max() == 255  # a mask that marks something, so the erase runs too
    # The first alternative of each one_of is given, so the background and crop edits run in the warm-up too.
    assert (folder / "input_color").read_bytes() == struct.pack("<I", 6) + b"1e90ff"
    assert (folder / "input_aspect").read_bytes() == struct.pack("<I", 3) + b"4:5"
    assert struct.unpack("<i", (folder / "input_focus_x").read_bytes()) == (-1,)  # optional: "not given"
    assert struct.unpack("<f", (folder / "input_aperture").read_bytes()) == (4.0,)


def test_stale_ensembles_and_models_are_removed_when_the_declaration_drops_them(tmp_path: Path) -> None:
    (tmp_path / "photo_depth" / "1").mkdir(parents=True)  # the old name of /v1/depth's ensemble
    (tmp_path / "depth" / "1").mkdir(parents=True)  # a catalog model: kept
    (tmp_path / "upscale_quality" / "1").mkdir(parents=True)  # a renamed catalog model, its weights left behind
    (tmp_path / "upscale_quality" / "1" / "model.onnx").write_bytes(b"old weights")
    write_configs(tmp_path, load_catalog(), "cpu")
    assert not (tmp_path / "photo_depth").exists() and not (tmp_path / "upscale_quality").exists()
    assert (tmp_path / "depth" / "config.pbtxt").exists() and (tmp_path / "photo_depth_portrait").exists()


def test_gpu_target_uses_onnxruntime_with_tensorrt_fp16() -> None:
    configs = repository_configs(load_catalog(), "gpu")
    depth = configs["depth"]
    assert depth["platform"] == "onnxruntime_onnx"
    accelerator = depth["optimization"]["execution_accelerators"]["gpu_execution_accelerator"][0]
    assert accelerator["name"] == "tensorrt" and accelerator["parameters"]["precision_mode"] == "FP16"
    assert depth["instance_group"][0]["kind"] == "KIND_GPU"


def test_schema_rejects_unknown_fields() -> None:
    with pytest.raises(ConverterError, match="invalid Triton config"):
        to_pbtxt({"name": "x", "max_batch_size": 1, "dynamic_batchin": {}})


def test_unknown_target_is_refused() -> None:
    with pytest.raises(ConverterError, match="choose one of"):
        repository_configs(load_catalog(), "tpu")


def test_trtexec_commands_build_fp16_with_a_batch_profile() -> None:
    commands = trtexec_commands(load_catalog(), Path("/models"), Path("/cache/sm90-trt10"))
    depth = next(c for c in commands if "/models/depth/1/model.onnx" in c)
    assert "--fp16" in depth
    assert "--minShapes=image:1x3x224x224" in depth and "--maxShapes=image:8x3x224x224" in depth
    assert "--saveEngine=/cache/sm90-trt10/depth/model.plan" in depth

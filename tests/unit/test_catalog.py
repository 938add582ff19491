import pytest

from converters.catalog import CATALOG_PATH, get_source, load_catalog, parse_catalog
from converters.errors import CatalogError


def test_catalog_has_the_three_served_models() -> None:
    catalog = load_catalog()
    assert set(catalog) == {"depth", "segmentation_fast", "segmentation_quality"}
    assert get_source("depth").input_size == (224, 224)
    assert get_source("segmentation_quality").normalization == "imagenet"


def test_unknown_model_names_the_known_ones() -> None:
    with pytest.raises(CatalogError, match="segmentation_fast"):
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

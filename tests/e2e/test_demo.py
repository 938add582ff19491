"""The demo page (``/demo``) in a real headless Chromium, against the real gateway and Triton.

A person pastes the key, uploads a real photo and sees depth, matte and cutout; the test reads the pixels the
browser shows, checks the credits on the page against the response headers Chromium received, taps the photo for
bokeh, crops, replaces the background, and sees an API error as text. It also opens /docs and checks that it
renders with nothing fetched from another origin. A screenshot of the page is left in
build/test-artifacts/demo.png.

Needs Debian's chromium and chromium-driver: ``tests/e2e/browser.sh`` installs them (as root, with apt-get).
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import numpy as np
import pytest
import skimage.data
from PIL import Image
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.e2e.conftest import BOOTSTRAP_KEY

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "build" / "test-artifacts"
TORSO = (slice(256, 448), slice(96, 288))  # rows, cols of the 512x512 astronaut: her suit
WALL = (slice(0, 256), slice(352, 512))  # the backdrop right of her (with the shuttle model)
FOCUS = (200, 330)  # where the test taps, in pixels of the photo: her suit
RESULT_TIMEOUT_S = 180  # three inferences on a 2-core CPU shared with other work
WINDOW = (1400, 1600)

# The pixels an <img> shows, as the browser decoded them: drawn to a canvas (a blob: URL of this origin does not
# taint it) and read back as a lossless PNG.
PIXELS_JS = """
const img = document.getElementById(arguments[0]);
const canvas = document.createElement("canvas");
canvas.width = img.naturalWidth;
canvas.height = img.naturalHeight;
canvas.getContext("2d").drawImage(img, 0, 0);
return canvas.toDataURL("image/png");
"""
LOADED_JS = """
return arguments[0].every((id) => {
  const img = document.getElementById(id);
  return img.src.startsWith("blob:") && img.complete && img.naturalWidth > 0;
});
"""
CALL_LOG_JS = """
return [...document.querySelectorAll("#call-log tbody tr")].map((row) => Object.fromEntries(
  [...row.cells].map((cell) => [cell.className, cell.textContent])));
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or chromedriver is None:
        pytest.fail("chromium and chromium-driver are not installed: run tests/e2e/browser.sh (make test does)")
    options = Options()
    options.binary_location = chromium
    for argument in ("--headless=new", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                     "--disable-extensions", "--disable-background-networking", "--disable-sync",
                     f"--window-size={WINDOW[0]},{WINDOW[1]}"):
        options.add_argument(argument)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # Chromium refuses to run as root with its sandbox
    # The network events (every request and response with its headers) and the console, read by the tests.
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    from skimage import data

    rgb = data.astronaut()
    path = tmp_path_factory.mktemp("demo") / "astronaut.jpg"
    Image.fromarray(rgb).save(path, format="JPEG", quality=95)
    return path, rgb


def network(driver: WebDriver) -> list[dict]:
    """The responses Chromium received since the last call: url, status, headers (lower-case names)."""
    responses = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.responseReceived":
            response = message["params"]["response"]
            responses.append({"url": response["url"], "status": response["status"],
                              "headers": {k.lower(): v for k, v in response["headers"].items()}})
    return responses


def csp_violations(driver: WebDriver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if "Content Security Policy" in entry["message"]]


def pixels(driver: WebDriver, image_id: str) -> np.ndarray:
    url = driver.execute_script(PIXELS_JS, image_id)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGBA"))


def wait(driver: WebDriver, condition: Callable[[WebDriver], object], what: str,
         timeout_s: float = RESULT_TIMEOUT_S) -> None:
    """Wait for ``condition``; an error the page shows meanwhile fails at once, with its text."""
    def check(d: WebDriver) -> object:
        error = d.find_element(By.ID, "error")
        if error.is_displayed():
            raise AssertionError(f"the page shows an error while waiting for {what}: {error.text}")
        return condition(d)

    WebDriverWait(driver, timeout_s, poll_frequency=0.2).until(check, f"{what} after {timeout_s} s")


def wait_for_images(driver: WebDriver, *image_ids: str) -> None:
    """Wait until each <img> shows a result (the page logs a call before it shows its image)."""
    wait(driver, lambda d: d.execute_script(LOADED_JS, list(image_ids)), f"images {image_ids}")


def open_demo(driver: WebDriver, url: str, key: str, photo_path: Path) -> None:
    driver.set_window_size(*WINDOW)
    driver.get(f"{url}/demo")
    assert driver.title == "imageserve demo"
    network(driver)  # drop what came before
    driver.find_element(By.ID, "key").send_keys(key)
    driver.find_element(By.ID, "photo").send_keys(str(photo_path))


def click_photo_at(driver: WebDriver, x: int, y: int) -> None:
    """Click the shown photo where pixel (x, y) of the photo is (it is shown smaller than its natural size)."""
    img = driver.find_element(By.ID, "photo-img")
    width, height, natural_w, natural_h = driver.execute_script(
        "const i = arguments[0]; return [i.clientWidth, i.clientHeight, i.naturalWidth, i.naturalHeight];", img)
    assert width < natural_w, "the photo should be shown scaled, so that the click needs scaling"
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", img)
    # Selenium 4 offsets are from the element's centre, in CSS pixels.
    dx, dy = round(x * width / natural_w - width / 2), round(y * height / natural_h - height / 2)
    ActionChains(driver).move_to_element_with_offset(img, dx, dy).click().perform()


def api_calls(responses: list[dict]) -> dict[str, dict]:
    """The API answers among ``responses``, by request id."""
    return {r["headers"]["x-request-id"]: r for r in responses if urlsplit(r["url"]).path.startswith("/v1/")}


def test_demo_shows_results_edits_and_credits(browser: WebDriver, gateway_url: str, photo: tuple[Path, np.ndarray],
                                              http: httpx.Client) -> None:
    path, rgb = photo
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    measured: dict[str, object] = {}  # written beside the screenshot: the margins of the checks below
    try:
        open_demo(browser, gateway_url, BOOTSTRAP_KEY, path)
        wait_for_images(browser, "depth-img", "mask-img", "cutout-img")
        measured.update(check_results(browser, rgb))

        click_photo_at(browser, *FOCUS)
        wait_for_images(browser, "bokeh-img")
        Select(browser.find_element(By.ID, "aspect")).select_by_value("16:9")  # a change runs the crop
        wait_for_images(browser, "crop-img")
        browser.find_element(By.ID, "background-run").click()
        wait_for_images(browser, "background-img")
        # The style names come from the service's OpenAPI document; a change of style runs it.
        styles = Select(browser.find_element(By.ID, "style"))
        assert len(styles.options) == 26 and styles.first_selected_option.text == "starry"
        styles.select_by_value("mosaic")
        wait_for_images(browser, "style-img")
        # Then the style of a picture (the coffee photo): a second call, with the picture as style_image.
        mosaic = pixels(browser, "style-img")[..., :3].astype(np.float32)
        picture = path.with_name("style-picture.jpg")
        Image.fromarray(skimage.data.coffee()).save(picture, format="JPEG", quality=90)
        browser.find_element(By.ID, "style-image").send_keys(str(picture))
        wait(browser, lambda d: np.abs(pixels(d, "style-img")[..., :3] - mosaic).mean() > 15,
             "the photo in the picture's style")
        measured["style_picture_vs_mosaic"] = float(np.abs(pixels(browser, "style-img")[..., :3] - mosaic).mean())
        assert browser.execute_script("return document.getElementById('style').selectedIndex") == -1, \
            "no built-in style shows as chosen while the picture's style applies"
        browser.find_element(By.ID, "upscale-run").click()
        wait_for_images(browser, "upscale-img")
        # Select at the clicked point (her suit: the person), then erase that selection.
        browser.find_element(By.ID, "select-run").click()
        wait_for_images(browser, "select-img")
        WebDriverWait(browser, 60, poll_frequency=0.2).until(
            lambda d: d.find_element(By.ID, "erase-run").is_enabled(), "the erase button after the selection")
        browser.find_element(By.ID, "erase-run").click()
        wait_for_images(browser, "erase-img")
        responses = api_calls(network(browser))
        measured.update(check_edits(browser, rgb, responses))
        measured["calls"] = check_credits(browser, responses, http)
        assert csp_violations(browser) == []
    finally:
        (ARTIFACTS / "demo.json").write_text(json.dumps(measured, indent=2) + "\n")
        save_screenshot(browser, ARTIFACTS / "demo.png")


def check_results(driver: WebDriver, rgb: np.ndarray) -> dict[str, float]:
    mask = pixels(driver, "mask-img")
    assert mask.shape == (512, 512, 4)
    matte = mask[..., 0].astype(np.float32)
    cutout = pixels(driver, "cutout-img")
    alpha = cutout[..., 3].astype(np.float32)
    colour_error = float(np.abs(cutout[TORSO][..., :3].astype(np.float32) - rgb[TORSO]).mean())
    depth = pixels(driver, "depth-img")[..., 0].astype(np.float32)
    measured = {"matte_torso_mean": float(matte[TORSO].mean()), "matte_torso_white": float(np.mean(matte[TORSO] > 128)),
                "matte_wall_mean": float(matte[WALL].mean()), "matte_wall_black": float(np.mean(matte[WALL] < 128)),
                "alpha_torso_mean": float(alpha[TORSO].mean()), "alpha_wall_mean": float(alpha[WALL].mean()),
                "cutout_torso_colour_error": colour_error,
                "depth_torso_mean": float(depth[TORSO].mean()), "depth_wall_mean": float(depth[WALL].mean())}
    assert matte[TORSO].mean() > 230 and np.mean(matte[TORSO] > 128) > 0.98, "the matte is white on her suit"
    assert matte[WALL].mean() < 25 and np.mean(matte[WALL] < 128) > 0.95, "the matte is black on the backdrop"
    assert alpha[TORSO].mean() > 230 and alpha[WALL].mean() < 25, "the cutout's alpha is the matte"
    assert colour_error < 12, f"the cutout keeps the suit's colours (mean error {colour_error:.1f})"
    assert depth[TORSO].mean() > depth[WALL].mean() + 20, "near is bright: she is in front of the backdrop"
    return measured


def texture(rgb: np.ndarray) -> float:
    """Mean absolute difference of horizontal neighbours: what a blur takes away."""
    return float(np.abs(np.diff(rgb.astype(np.float32), axis=1)).mean())


def check_edits(driver: WebDriver, rgb: np.ndarray, responses: dict[str, dict]) -> dict[str, object]:
    bokeh = [r for r in responses.values() if urlsplit(r["url"]).path == "/v1/bokeh"]
    assert len(bokeh) == 1 and bokeh[0]["status"] == 200
    query = parse_qs(urlsplit(bokeh[0]["url"]).query)
    focus_x, focus_y = int(query["focus_x"][0]), int(query["focus_y"][0])
    # The click was scaled from the shown size to pixels of the photo (a pixel of rounding either way).
    assert abs(focus_x - FOCUS[0]) <= 2 and abs(focus_y - FOCUS[1]) <= 2, (focus_x, focus_y)
    assert query["aperture"] == ["4"]
    assert driver.find_element(By.ID, "focus-text").text.startswith(f"x {focus_x}, y {focus_y}")
    blurred = pixels(driver, "bokeh-img")[..., :3]
    assert blurred.shape == rgb.shape
    measured: dict[str, object] = {
        "focus": [focus_x, focus_y], "wall_texture_photo": texture(rgb[WALL]),
        "wall_texture_bokeh": texture(blurred[WALL]),
        "bokeh_torso_error": float(np.abs(blurred[TORSO].astype(np.float32) - rgb[TORSO]).mean())}
    assert measured["wall_texture_bokeh"] < 0.8 * measured["wall_texture_photo"], "the backdrop is out of focus"
    assert measured["bokeh_torso_error"] < 12, "the focused suit stays sharp"

    crop = [r for r in responses.values() if urlsplit(r["url"]).path == "/v1/crop"]
    assert len(crop) == 1 and crop[0]["status"] == 200
    box = crop[0]["headers"]["x-crop-box"]
    assert driver.find_element(By.ID, "crop-box").text == box
    x, y, w, h = (int(v) for v in box.split(","))
    assert abs(w / h - 16 / 9) < 0.02 and 0 <= x and x + w <= 512 and 0 <= y and y + h <= 512
    cropped = pixels(driver, "crop-img")
    assert cropped.shape[:2] == (h, w)

    background = pixels(driver, "background-img")[..., :3].astype(np.float32)
    colour = np.array([0x1E, 0x90, 0xFF], np.float32)  # the colour input's default, #1e90ff
    measured.update(crop_box=box, background_wall_error=float(np.abs(background[WALL] - colour).mean()),
                    background_torso_error=float(np.abs(background[TORSO] - rgb[TORSO]).mean()))
    assert measured["background_wall_error"] < 20, "the backdrop is the chosen colour"
    assert measured["background_torso_error"] < 12, "she is unchanged"

    style = [parse_qs(urlsplit(r["url"]).query) for r in responses.values() if urlsplit(r["url"]).path == "/v1/style"]
    assert len(style) == 2 and style[0]["style"] == ["mosaic"]
    assert "style" not in style[1], "the picture's style is sent as the style_image part, without a style name"
    styled = pixels(driver, "style-img")[..., :3]
    measured["style_difference"] = float(np.abs(styled.astype(np.float32) - rgb).mean())
    assert styled.shape == rgb.shape and measured["style_difference"] > 15, "the photo is restyled"
    upscaled = pixels(driver, "upscale-img")[..., :3]
    assert upscaled.shape == (1024, 1024, 3), "2x the 512x512 photo"

    select = [r for r in responses.values() if urlsplit(r["url"]).path == "/v1/select"]
    assert len(select) == 1 and select[0]["headers"]["x-selected"] == "person"
    assert parse_qs(urlsplit(select[0]["url"]).query)["x"] == [str(focus_x)]
    assert driver.find_element(By.ID, "selected").text == "person"
    chosen = pixels(driver, "select-img")[..., 0]
    assert chosen[TORSO].mean() > 230 and chosen[WALL].mean() < 25, "the tap on her suit selects her"
    erased = pixels(driver, "erase-img")[..., :3].astype(np.float32)
    outside = chosen < 8
    measured.update(erase_torso_change=float(np.abs(erased[TORSO] - rgb[TORSO]).mean()),
                    erase_outside_change=float(np.abs(erased[outside] - rgb[outside]).mean()))
    assert erased.shape == rgb.shape and measured["erase_torso_change"] > 30, "the selection is erased"
    assert measured["erase_outside_change"] < 2, "outside the selection the photo is unchanged"
    return measured


def check_credits(driver: WebDriver, responses: dict[str, dict], http: httpx.Client) -> list[dict]:
    """Every call in the page's log shows the credits and request id of the response Chromium received."""
    rows = driver.execute_script(CALL_LOG_JS)
    assert sorted(row["operation"] for row in rows) == ["background", "bokeh", "crop", "cutout", "depth", "erase",
                                                        "mask", "select", "style", "style", "upscale"]
    assert set(responses) == {row["request-id"] for row in rows}
    newest = {}  # operation -> its newest row (the log lists the newest first): the call its result shows
    for row in rows:
        newest.setdefault(row["operation"], row)
        headers = responses[row["request-id"]]["headers"]
        assert row["status"] == "200"
        assert row["charged"] == headers["x-credits-charged"] and row["remaining"] == headers["x-credits-remaining"]
        assert int(row["charged"]) > 0
    for row in newest.values():
        meta = driver.find_element(By.ID, f"{row['operation']}-meta").text
        assert meta.startswith(f"{row['charged']} credits charged, {row['remaining']} remaining, "
                               f"request id {row['request-id']}"), meta
    # The calls ran one after another: each balance is the one before it less its charge, down to the balance
    # the ledger has now.
    ordered = sorted(rows, key=lambda row: -int(row["remaining"]))
    for before, after in zip(ordered, ordered[1:], strict=False):
        assert int(before["remaining"]) - int(after["charged"]) == int(after["remaining"])
    assert http.get("/v1/usage").json()["balance"] == int(ordered[-1]["remaining"])
    return ordered


def save_screenshot(driver: WebDriver, path: Path) -> None:
    """The whole page: the window made as tall as the page first."""
    try:
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(WINDOW[0], min(int(height) + 120, 6000))
        driver.execute_script("window.scrollTo(0, 0)")
        assert driver.save_screenshot(str(path))
    except WebDriverException as exc:
        pytest.fail(f"no screenshot: {exc}")


def test_demo_shows_an_api_error_as_text(browser: WebDriver, gateway_url: str,
                                         photo: tuple[Path, np.ndarray]) -> None:
    bad_key = "not-a-key-" + "x" * 30
    open_demo(browser, gateway_url, bad_key, photo[0])
    error = browser.find_element(By.ID, "error")
    WebDriverWait(browser, 60, poll_frequency=0.2).until(lambda d: error.is_displayed(), "the error after 60 s")
    responses = api_calls(network(browser))
    assert [r["status"] for r in responses.values()] == [401]  # the first call failed; no further ones
    request_id = next(iter(responses))
    # What the API answers that key: the page shows its code and message as they are.
    expected = httpx.post(f"{gateway_url}/v1/depth", content=photo[0].read_bytes(), timeout=30,
                          headers={"Authorization": f"Bearer {bad_key}", "Content-Type": "image/jpeg"}).json()["error"]
    assert browser.find_element(By.ID, "error-title").text == f"depth: 401 {expected['code']}"
    assert browser.find_element(By.ID, "error-message").text == expected["message"]
    assert browser.find_element(By.ID, "error-request-id").text == f"request id {request_id}"
    assert expected["code"] in error.text
    assert browser.execute_script("return document.getElementById('depth-img').getAttribute('src')") is None
    rows = browser.execute_script(CALL_LOG_JS)
    assert rows == [{"operation": "depth", "status": "401", "charged": "–", "remaining": "–",
                     "request-id": request_id, "time": rows[0]["time"]}]
    assert csp_violations(browser) == []


def test_docs_render_without_another_origin(browser: WebDriver, gateway_url: str) -> None:
    network(browser)  # drop what came before
    browser.get(f"{gateway_url}/docs")
    WebDriverWait(browser, 60, poll_frequency=0.2).until(
        lambda d: "imageserve" in d.execute_script(
            "const t = document.querySelector('.swagger-ui .info .title'); return t ? t.textContent : '';"),
        "Swagger UI's title after 60 s")
    assert browser.find_elements(By.CSS_SELECTOR, ".swagger-ui .opblock")  # the operations are listed
    urls = [r["url"] for r in network(browser)]
    assert any(url.endswith("/openapi.json") for url in urls) and any("swagger-ui-bundle.js" in url for url in urls)
    assert [url for url in urls if not url.startswith((gateway_url, "data:", "blob:"))] == []

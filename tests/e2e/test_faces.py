"""Face and part layers, the automatic matte choice and select-at-a-tap end to end: the real gateway, Triton,
the face networks and mattes on real photos (``skimage.data``). Each test fails if its feature broke: the parts
lie where a face's parts are, two faces give two boxes, ``auto`` picks the portrait matte only with a face, and a
tap returns the thing under it."""

from __future__ import annotations

import base64
import io

import httpx
import numpy as np
import pytest
import skimage.data
from PIL import Image

from tests.e2e.conftest import BOOTSTRAP_KEY

pytestmark = pytest.mark.e2e

ASTRONAUT = skimage.data.astronaut()  # 512x512, one face at about x 160-290, y 40-170
SUIT, TANK, FLAG = (100, 330), (410, 60), (30, 150)  # points on her suit, the model shuttle's tank, the flag


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def post(http: httpx.Client, route: str, photo: np.ndarray, **params: object) -> httpx.Response:
    return http.post(route, params=params, files={"image": ("photo.png", png(photo), "image/png")})


def grey(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("L"))


def mask(response: httpx.Response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return grey(response.content)


@pytest.fixture(scope="module")
def astronaut_layers(gateway_url: str) -> tuple[dict, dict[str, np.ndarray], httpx.Headers]:
    with httpx.Client(base_url=gateway_url, timeout=60, headers={"Authorization": f"Bearer {BOOTSTRAP_KEY}"}) as http:
        response = post(http, "/v1/layers", ASTRONAUT,
                        include="matte,person,face,eyes,irises,brows,lips,mouth,hair,faces")
    assert response.status_code == 200, response.text
    body = response.json()
    return body, {name: grey(base64.b64decode(data)) for name, data in body["layers"].items()}, response.headers


def centroid_y(layer: np.ndarray) -> float:
    rows = np.nonzero(layer >= 128)[0]
    assert rows.size, "the layer is empty"
    return float(rows.mean())


def test_one_face_is_found_with_its_landmarks_in_its_box(astronaut_layers) -> None:
    body, _, headers = astronaut_layers
    assert headers["X-Faces"] == "1" and headers["X-Subject"] == "person"
    (face,) = body["faces"]
    x, y, w, h = face["box"]
    assert 130 < x < 200 and 30 < y < 110 and 70 < w < 160 and 70 < h < 160, face["box"]
    points = np.array(face["landmarks"])
    assert points.shape == (468, 2)
    assert (points[:, 0] > x - 0.2 * w).all() and (points[:, 0] < x + 1.2 * w).all()
    assert (points[:, 1] > y - 0.3 * h).all() and (points[:, 1] < y + 1.3 * h).all()


def test_the_parts_lie_where_a_faces_parts_are(astronaut_layers) -> None:
    body, layers, _ = astronaut_layers
    x, y, w, h = body["faces"][0]["box"]
    for name in ("face", "eyes", "irises", "brows", "lips"):
        inside = np.zeros_like(layers[name], dtype=bool)
        inside[int(y - 0.3 * h):int(y + 1.2 * h), int(x - 0.1 * w):int(x + 1.1 * w)] = True
        assert (layers[name] >= 128).sum() > 30, name
        assert not (layers[name][~inside] >= 128).any(), f"{name} reaches outside the face box"
    assert centroid_y(layers["brows"]) < centroid_y(layers["eyes"]) < centroid_y(layers["lips"])
    eyes = layers["eyes"] >= 64
    irises = layers["irises"] >= 128
    assert irises.sum() > 10 and (irises & eyes).sum() >= 0.8 * irises.sum(), "the irises are not inside the eyes"
    assert not ((layers["face"] >= 128) & (layers["eyes"] >= 128)).any(), "the face layer must leave out the eyes"


def test_hair_lies_above_the_face_and_inside_the_person_matte(astronaut_layers) -> None:
    body, layers, _ = astronaut_layers
    hair = layers["hair"] >= 128
    assert hair.sum() > 2000  # her hair is a large region
    assert centroid_y(layers["hair"]) < centroid_y(layers["face"])
    assert (hair & (layers["matte"] < 64)).sum() < 0.02 * hair.sum()
    assert np.array_equal(layers["person"], layers["matte"])  # a face was found: the person is the matte


def test_two_faces_give_two_boxes(http: httpx.Client) -> None:
    """Two astronauts side by side: faces of an eighth of the photo's width, which the short-range detector (and
    MediaPipe's own) misses and the served full-range one finds."""
    both = np.hstack([ASTRONAUT, ASTRONAUT[:, ::-1]])
    response = post(http, "/v1/layers", both, include="faces,face")
    assert response.status_code == 200, response.text
    assert response.headers["X-Faces"] == "2"
    boxes = sorted(face["box"] for face in response.json()["faces"])
    assert boxes[0][0] + boxes[0][2] < 512 <= boxes[1][0], boxes
    face = mask(post(http, "/v1/mask", both, layer="face")) >= 128
    assert face[:, :512].sum() > 500 and face[:, 512:].sum() > 500  # both faces have their layer


@pytest.mark.parametrize(("name", "photo", "subject"), [
    ("astronaut", ASTRONAUT, "person"), ("coffee", skimage.data.coffee(), "object"),
    ("chelsea", skimage.data.chelsea(), "object"),
])
def test_auto_picks_the_portrait_matte_only_for_a_face(http: httpx.Client, name: str, photo: np.ndarray,
                                                       subject: str) -> None:
    auto = post(http, "/v1/mask", photo)  # model=auto, the default
    assert auto.status_code == 200, auto.text
    assert auto.headers["X-Subject"] == subject, name
    chosen = post(http, "/v1/mask", photo, model="portrait" if subject == "person" else "object")
    assert chosen.headers["X-Subject"] == subject
    assert np.array_equal(mask(auto), mask(chosen)), "auto must serve exactly the matte it chose"


def test_a_fixed_matte_runs_the_faces_step_only_for_the_layers_that_need_it(http: httpx.Client) -> None:
    subject = post(http, "/v1/mask", ASTRONAUT, model="fast")  # the ensemble without the faces step
    person = post(http, "/v1/mask", ASTRONAUT, model="fast", layer="person")  # its twin with it
    assert subject.status_code == person.status_code == 200, subject.text
    assert "X-Faces" not in subject.headers and person.headers["X-Faces"] == "1"
    assert np.array_equal(mask(subject), mask(person)), "with a face found, the person is the matte"
    assert post(http, "/v1/mask", ASTRONAUT).headers["X-Faces"] == "1"  # auto looks for faces to choose


def test_a_photo_without_a_face_has_empty_face_layers_billed_as_usual(http: httpx.Client) -> None:
    response = post(http, "/v1/mask", skimage.data.coffee(), layer="eyes")
    assert response.status_code == 200, response.text
    assert response.headers["X-Faces"] == "0" and int(response.headers["X-Credits-Charged"]) >= 1
    assert not mask(response).any()


def test_a_single_layer_equals_the_layers_one(http: httpx.Client, astronaut_layers) -> None:
    _, layers, _ = astronaut_layers
    assert np.array_equal(mask(post(http, "/v1/mask", ASTRONAUT, layer="eyes")), layers["eyes"])
    background = mask(post(http, "/v1/mask", ASTRONAUT, layer="background"))
    assert np.array_equal(background.astype(int), 255 - layers["matte"].astype(int))


def test_a_tap_on_the_person_returns_the_person(http: httpx.Client, astronaut_layers) -> None:
    _, layers, _ = astronaut_layers
    response = post(http, "/v1/select", ASTRONAUT, x=SUIT[0], y=SUIT[1])
    chosen = mask(response) >= 128
    assert response.headers["X-Selected"] == "person"
    person = layers["matte"] >= 128
    assert (chosen & person).sum() / (chosen | person).sum() >= 0.9


def test_a_tap_on_the_face_returns_the_face_layer(http: httpx.Client, astronaut_layers) -> None:
    _, layers, _ = astronaut_layers
    rows, cols = np.nonzero(layers["face"] == 255)
    middle = len(rows) // 2
    response = post(http, "/v1/select", ASTRONAUT, x=int(cols[middle]), y=int(rows[middle]))
    assert response.headers["X-Selected"] == "face"
    assert np.array_equal(mask(response), layers["face"])


@pytest.mark.parametrize("tap", [TANK, FLAG])
def test_a_tap_on_a_background_object_returns_a_region_without_the_person(http: httpx.Client, astronaut_layers,
                                                                          tap: tuple[int, int]) -> None:
    _, layers, _ = astronaut_layers
    response = post(http, "/v1/select", ASTRONAUT, x=tap[0], y=tap[1])
    assert response.headers["X-Selected"] == "region"
    chosen = mask(response) >= 128
    assert chosen[tap[1], tap[0]], "the region must hold the tap"
    assert 200 < chosen.sum() < 0.4 * chosen.size
    assert (chosen & (layers["matte"] >= 128)).sum() < 0.01 * chosen.sum()


def test_a_negative_point_is_never_selected(http: httpx.Client) -> None:
    response = post(http, "/v1/select", ASTRONAUT, x=TANK[0], y=TANK[1], negative="410,90")
    assert response.status_code == 200, response.text
    assert mask(response)[90, 410] < 128


@pytest.mark.parametrize(("params", "says"), [
    ({"x": 600, "y": 10}, "outside the upright photo of 512x512"),
    ({"x": 10, "y": 10, "points": ";".join(["5,5"] * 16)}, "points"),
    ({"x": 10}, "y"),
])
def test_bad_taps_are_refused_and_cost_nothing(http: httpx.Client, params: dict, says: str) -> None:
    before = http.get("/v1/usage").json()
    response = post(http, "/v1/select", ASTRONAUT, **params)
    assert response.status_code == 400, response.text
    assert says in response.text
    assert http.get("/v1/usage").json() == before


def test_erase_at_a_tap_fills_what_select_selects_there(http: httpx.Client) -> None:
    selected = mask(post(http, "/v1/select", ASTRONAUT, x=TANK[0], y=TANK[1])) >= 128
    response = post(http, "/v1/erase", ASTRONAUT, x=TANK[0], y=TANK[1])
    assert response.status_code == 200, response.text
    assert response.headers["X-Selected"] == "region"
    erased = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB")).astype(int)
    assert np.array_equal(erased[~selected], ASTRONAUT[~selected].astype(int)), "outside the selection: the photo"
    assert np.abs(erased[selected] - ASTRONAUT[selected]).mean() > 10, "the tank is filled from around it"


def test_erase_with_a_mask_runs_no_matte_and_refuses_both_ways_at_once(http: httpx.Client) -> None:
    region = np.zeros(ASTRONAUT.shape[:2], np.uint8)
    region[20:100, 390:430] = 255
    files = {"image": ("photo.png", png(ASTRONAUT), "image/png"), "mask": ("mask.png", png(region), "image/png")}
    response = http.post("/v1/erase", files=files)
    assert response.status_code == 200, response.text
    assert "X-Selected" not in response.headers  # the uploaded mask, no selection
    both = http.post("/v1/erase", params={"x": 10, "y": 10}, files=files)
    assert both.status_code == 400 and "mask" in both.text

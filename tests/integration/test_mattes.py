"""Each matte variant, served by the real Triton ensembles, covers its subject and not the backdrop.

Boxes (y0, y1, x0, x1) in photo pixels, chosen by looking at the photos (a person or a cup well inside
its outline; plain wall, sky or table well outside), not by tuning to the mattes.
"""

import io

import numpy as np
import pytest
import skimage.data
import tritonclient.grpc as grpcclient
from PIL import Image

from contract.product import PRODUCT
from converters.catalog import load_catalog
from converters.triton_config import MODEL_INPUT
from evaluation import composites as comp
from evaluation.metrics import iou
from imaging.tensors import model_input
from stack.triton import TritonServer
from tests.conftest import jpeg_bytes

pytestmark = pytest.mark.integration

INSIDE, OUTSIDE = 0.8, 0.1  # least mean alpha inside the subject, most outside it

# 512x512 astronaut: her face, her suit's torso left of the helmet she holds; the wall right of the shuttle.
ASTRONAUT = {"face": (64, 160, 192, 272), "torso": (256, 448, 96, 256)}, {"wall top-right": (0, 192, 448, 512)}
# 512x512 greyscale camera man: his coat; the sky at the top right.
CAMERA = {"coat": (192, 448, 32, 128)}, {"sky top-right": (0, 96, 352, 512)}
# 600x400 coffee: the cup, seen from above; the wooden table in two corners.
COFFEE = {"cup": (60, 260, 220, 400)}, {"table top-left": (0, 80, 0, 100), "table bottom-right": (330, 400, 500, 600)}

PHOTOS = {
    "astronaut": (skimage.data.astronaut, ASTRONAUT),
    "camera": (lambda: np.repeat(skimage.data.camera()[..., np.newaxis], 3, axis=-1), CAMERA),
    "coffee": (skimage.data.coffee, COFFEE),
}
# The person variants on people; the salient-object variants on an object; auto on both (portrait for her face).
CASES = [("auto", "astronaut"), ("auto", "coffee"), ("fast", "astronaut"), ("fast", "camera"),
         ("portrait", "astronaut"), ("portrait", "camera"), ("object", "coffee"), ("object-lite", "coffee")]


def test_every_variant_is_checked() -> None:
    assert {variant for variant, _ in CASES} == set(PRODUCT.operation("mask").variant_names)


@pytest.fixture(scope="module")
def client(triton: TritonServer) -> grpcclient.InferenceServerClient:
    return grpcclient.InferenceServerClient(f"127.0.0.1:{triton.ports.grpc}")


def served_matte(client: grpcclient.InferenceServerClient, variant: str, photo: np.ndarray) -> np.ndarray:
    image = grpcclient.InferInput("IMAGE", [1, 1], "BYTES")
    image.set_data_from_numpy(np.array([[jpeg_bytes(photo, quality=95)]], dtype=np.object_))
    side = grpcclient.InferInput("MAX_SIDE", [1, 1], "INT32")
    side.set_data_from_numpy(np.array([[0]], dtype=np.int32))
    ensemble = PRODUCT.ensemble_name(PRODUCT.operation("mask"), variant)
    result = client.infer(ensemble, [image, side], outputs=[grpcclient.InferRequestedOutput("MASK_IMAGE")])
    matte = np.asarray(Image.open(io.BytesIO(bytes(result.as_numpy("MASK_IMAGE").reshape(-1)[0]))))
    assert matte.shape == photo.shape[:2]
    return matte.astype(np.float32) / 255


@pytest.mark.parametrize("variant, photo_name", CASES)
def test_matte_covers_the_subject_and_not_the_backdrop(client, variant: str, photo_name: str) -> None:
    load, (inside, outside) = PHOTOS[photo_name]
    matte = served_matte(client, variant, load())
    means = {box: float(matte[y0:y1, x0:x1].mean()) for box, (y0, y1, x0, x1) in {**inside, **outside}.items()}
    assert all(means[box] > INSIDE for box in inside), means
    assert all(means[box] < OUTSIDE for box in outside), means


# Each person over scikit-image's cat (the evaluation's "chelsea" photo, at placements the evaluation does not use):
# MODNet alone mattes the cat's face too; the served portrait matte is gated by MediaPipe's person matte. Boxes
# (y0, y1, x0, x1) of the cat far from the person.
SECOND_SUBJECT = [
    ("portrait", comp.Spec("camera", "cat", 0.6, 0.0, False, 90), (200, 320, 480, 620)),  # right of him: its eye
]


def modnet_alone(client: grpcclient.InferenceServerClient, photo: np.ndarray) -> np.ndarray:
    """The portrait model called directly through Triton (no gate), upsampled to the photo."""
    source = load_catalog()[PRODUCT.operation("mask").variant("portrait").models[0]]
    tensor = model_input(Image.fromarray(photo), *source.input_size, source.normalization)[np.newaxis]
    image = grpcclient.InferInput(MODEL_INPUT, list(tensor.shape), "FP32")
    image.set_data_from_numpy(tensor)
    low = client.infer(source.name, [image]).as_numpy(source.output)[0, 0]
    return np.asarray(Image.fromarray(low).resize(photo.shape[1::-1], Image.Resampling.BILINEAR))


@pytest.mark.parametrize("variant, spec, box", SECOND_SUBJECT, ids=[v for v, _, _ in SECOND_SUBJECT])
def test_the_person_matte_leaves_out_a_second_subject_that_modnet_alone_mattes(client, variant: str, spec,
                                                                               box) -> None:
    composite = comp.render(spec)
    y0, y1, x0, x1 = box
    assert composite.alpha[y0:y1, x0:x1].max() == 0.0  # nothing of the person there
    alone = modnet_alone(client, composite.image)
    assert alone[y0:y1, x0:x1].mean() > 0.5  # the ungated matte takes the cat
    served = served_matte(client, variant, composite.image)
    assert served[y0:y1, x0:x1].mean() < OUTSIDE
    assert iou(served, composite.alpha) > 2 * iou(alone, composite.alpha)  # camera man: 0.34 against 0.12

"""Bad input to any backend raises ValueError naming the field - never a crash deeper down."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tests.helpers import make_observation


def _replace_image(obs, cam, img):
    return dataclasses.replace(obs, images={**obs.images, cam: img})


CASES = {
    "wrong image size": (
        lambda o: _replace_image(o, "cam_high", np.zeros((480, 640, 3), np.uint8)),
        r"images\['cam_high'\]: expected shape \(224, 224, 3\), got \(480, 640, 3\)",
    ),
    "wrong image dtype": (
        lambda o: _replace_image(o, "cam_wrist", np.zeros((224, 224, 3), np.float32)),
        r"images\['cam_wrist'\]: expected dtype uint8, got float32",
    ),
    "grey image": (
        lambda o: _replace_image(o, "cam_wrist", np.zeros((224, 224), np.uint8)),
        r"images\['cam_wrist'\]: expected shape",
    ),
    "missing camera": (
        lambda o: dataclasses.replace(o, images={"cam_high": o.images["cam_high"]}),
        r"images\['cam_wrist'\]: missing",
    ),
    "unknown camera": (
        lambda o: _replace_image(o, "cam_left", o.images["cam_high"]),
        r"images: unknown cameras \['cam_left'\]",
    ),
    "NaN state": (
        lambda o: dataclasses.replace(o, state=np.array([0, 1, np.nan, 0, 0, 0, 0.0])),
        r"state: nan \(non-finite\) at joint 'joint3'",
    ),
    "short state": (
        lambda o: dataclasses.replace(o, state=np.zeros(6)),
        r"state: expected shape \(7,\), got \(6,\)",
    ),
    "unknown embodiment": (
        lambda o: dataclasses.replace(o, embodiment="ur5"),
        r"embodiment: 'ur5' is not in this engine",
    ),
    "instruction not text": (
        lambda o: dataclasses.replace(o, instruction=3),
        r"instruction: expected str",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_observation_raises_value_error_naming_the_field(backend, case):
    make_bad, message = CASES[case]
    with pytest.raises(ValueError, match=message):
        backend.infer(make_bad(make_observation()))


def test_standard_mode_without_world_model_prediction(backend):
    with pytest.raises(ValueError, match=r"world: standard mode needs"):
        backend.infer(make_observation(), mode="standard")


def test_unknown_mode(backend):
    with pytest.raises(ValueError, match=r"mode: unknown mode 'fast'"):
        backend.infer(make_observation(), mode="fast")


def test_bad_noise_shape(backend):
    with pytest.raises(ValueError, match=r"noise: expected shape \(50, 32\)"):
        backend.infer(make_observation(), noise=np.zeros((10, 32)))


def test_world_model_rejects_a_chunk_for_another_robot(backend):
    with pytest.raises(ValueError, match=r"actions: expected shape \(50, 7\)"):
        backend.predict_world(make_observation(), np.zeros((50, 17)))


def test_backend_still_serves_after_bad_input(backend):
    with pytest.raises(ValueError):
        backend.infer(make_observation(state=np.full(7, np.inf)))
    assert np.all(np.isfinite(backend.infer(make_observation()).actions))

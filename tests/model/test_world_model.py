from __future__ import annotations

import torch

from gigabrain_runtime.inference.export import example_inputs
from gigabrain_runtime.model.world_model import LatentWorldModel, patchify


def test_prediction_shapes_and_value_and_proprio_read_from_the_tiles(tiny_cfg):
    torch.manual_seed(0)
    wm = LatentWorldModel(tiny_cfg).eval()
    x = example_inputs(tiny_cfg)
    with torch.no_grad():
        z, value, proprio = wm.predict(
            x["images"], x["image_mask"], x["state"], x["actions"], x["wm_noise"]
        )
    assert z.shape == (1, tiny_cfg.num_wm_tokens, tiny_cfg.world_model.z_token_dim)
    assert value.shape == (1,)
    assert proprio.shape == (1, tiny_cfg.world_model.proprio_dim)


def test_split_state_inverts_the_tiling_of_value_and_proprio(tiny_cfg):
    """s = [z ; Psi(v) ; Psi(p)]: reading back v and p from a tiled state gives them exactly."""
    torch.manual_seed(0)
    wm = LatentWorldModel(tiny_cfg)
    cfg = tiny_cfg
    g = cfg.latent_grid
    latents = torch.randn(
        1,
        cfg.vision.max_cameras * cfg.world_model.future_frames,
        g,
        g,
        cfg.world_model.latent_channels,
    )
    value = torch.tensor([0.37])
    proprio = torch.randn(1, cfg.world_model.proprio_dim)
    s = patchify(wm.tile(latents, value[:, None], proprio), cfg.world_model.patch_size)
    mask = torch.ones(1, cfg.vision.max_cameras, dtype=torch.bool)
    z, v, p = wm.split_state(s, mask)
    torch.testing.assert_close(v, value)
    torch.testing.assert_close(p, proprio)
    torch.testing.assert_close(z, patchify(latents, cfg.world_model.patch_size))


def test_action_chunk_conditions_the_prediction(tiny_cfg):
    torch.manual_seed(0)
    wm = LatentWorldModel(tiny_cfg).eval()
    x = example_inputs(tiny_cfg)
    with torch.no_grad():
        a = wm.predict(x["images"], x["image_mask"], x["state"], x["actions"], x["wm_noise"])
        b = wm.predict(x["images"], x["image_mask"], x["state"], -x["actions"], x["wm_noise"])
    assert (a[0] - b[0]).abs().max() > 1e-4

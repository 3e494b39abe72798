"""Write a random-weight GigaBrain-0 checkpoint directory in the published layout.

For measuring what the released size costs (export memory and time, engine size, latency)
without the real weights: ``config.json`` as the released one, float32 safetensors shards with
the diffusers index, every published key (``lm_head.weight`` stored as its own copy), the
fixture's norm_stats.json and tokenizer are NOT written (pass them to export).

    python tools/random_checkpoint.py OUT [--shards 4] [--seed 0]

The weights are drawn per tensor: matrices N(0, fan_in^-1/2), vectors N(0, 0.2) (so the
RMSNorm (1 + w) and AdaRMS paths carry signal), as the reference fixture was made.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from gigabrain_runtime.model.checkpoint import CLASS_NAME, OFFICIAL_DEFAULTS
from gigabrain_runtime.model.policy import GigaBrainPolicy
from gigabrain_runtime.model.presets import get_preset
from gigabrain_runtime.model.weights import official_gigabrain0_key


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    cfg = get_preset("gigabrain-0")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = {
        "_class_name": CLASS_NAME,
        "_diffusers_version": "0.35.2",
        **OFFICIAL_DEFAULTS,
        "num_embodiments": cfg.action_expert.max_embodiments,
    }
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in GigaBrainPolicy(cfg).state_dict().items()}
    keys = sorted(shapes)
    embed = "decoder.embed_tokens.weight"
    g = torch.Generator().manual_seed(args.seed)
    per_shard = -(-len(keys) // args.shards)
    weight_map: dict[str, str] = {}
    total = 0
    for i in range(args.shards):
        name = f"diffusion_pytorch_model-{i + 1:05d}-of-{args.shards:05d}.safetensors"
        tensors: dict[str, torch.Tensor] = {}
        for key in keys[i * per_shard : (i + 1) * per_shard]:
            shape = shapes[key]
            std = (shape[-1] if len(shape) > 1 else 25.0) ** -0.5
            t = torch.randn(shape, generator=g) * std
            tensors[official_gigabrain0_key(key)] = t
            if key == embed:  # the released files store the tied head as its own copy
                tensors["paligemma_with_expert.lm_head.weight"] = t.clone()
        save_file(tensors, str(out / name))
        weight_map.update(dict.fromkeys(tensors, name))
        total += sum(t.numel() * 4 for t in tensors.values())
        print(f"wrote {name}: {len(tensors)} tensors", file=sys.stderr)
        del tensors
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (out / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps(index))
    print(f"{out}: {len(weight_map)} tensors, {total / 2**30:.2f} GiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

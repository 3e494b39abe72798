"""``gigabrain-runtime train``: the policy's flow-matching objective on a LeRobot v3.0 dataset.

One loop for one process or many: launched by ``torchrun --nproc-per-node N``, each process
takes its share of every global batch and PyTorch's DistributedDataParallel averages the
gradients (gloo on CPUs, NCCL on GPUs). Every random draw - which frames form batch k, each
sample's flow noise and time - comes from (seed, step) and is drawn for the whole global batch
on every process, so N processes compute the same update as one (tests/training).

Inputs are made by the engine's own :class:`Preprocessor` (images letterboxed as the vla does,
the prompt and tokenizer, the state's normalisation), with quantile normalisation statistics
computed from the dataset (``norm_stats.json``). AdamW, linear warm-up then cosine decay, an
exponential moving average of the weights (what is exported), gradient clipping, bfloat16
autocast where CUDA exists. Checkpoints (``checkpoints/step-NNNNNNN/``): the weights, the EMA,
the optimiser state in safetensors and the step in ``trainer.json``; a run started again with
the same ``--out`` resumes from the newest one and continues exactly as if never stopped.
Outputs: ``weights.safetensors`` (the EMA weights), ``norm_stats.json``, ``train_config.json``,
``loss.csv`` and ``loss.png``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from gigabrain_runtime.inference.manifest import EmbodimentEntry
from gigabrain_runtime.inference.normalization import parse_norm_stats
from gigabrain_runtime.inference.preprocessing import Preprocessor, still_chunk
from gigabrain_runtime.inference.types import Mode, Observation
from gigabrain_runtime.model.advantage import (
    HILR_GAMMA,
    SAMPLE_FRAMES,
    UNCONDITIONED,
    value_targets,
)
from gigabrain_runtime.model.config import ModelConfig
from gigabrain_runtime.model.losses import (
    PolicyBatch,
    policy_loss,
    ramp_loss,
    sample_flow_time,
    world_model_flow_loss,
)
from gigabrain_runtime.model.policy import GigaBrainPolicy
from gigabrain_runtime.model.weights import load_weights, save_weights
from gigabrain_runtime.robots.embodiment import get_embodiment
from gigabrain_runtime.training.data import LeRobotDataset
from gigabrain_runtime.training.normstats import compute_norm_stats, write_norm_stats

if TYPE_CHECKING:
    from gigabrain_runtime.inference.export import EngineSource

CHECKPOINTS = "checkpoints"
PARALLEL = ("ddp", "fsdp")
# policy: GigaBrain-0.5's objective (behaviour cloning on every frame); world-model: L_WM alone
# (future latent state and value); ramp: the RAMP objective on the dataset's advantage
# indicators, conditioned on the world model's prediction, the world model trained jointly
OBJECTIVES = ("policy", "world-model", "ramp")


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    robot: str = "piper"
    steps: int = 2000
    batch_size: int = 32  # global, over every process
    lr: float = 3e-4
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1  # cosine decays to lr x this
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    save_every: int = 500
    log_every: int = 10
    seed: int = 0
    stride: int = 1  # every stride-th frame is a sample
    # joints whose actions the policy predicts as offsets from the observed state (the chunk's
    # points minus the state at the observation; the engine adds the state back, its
    # ``delta_mask``). openpi trains joint-space arms this way, grippers absolute.
    delta_joints: tuple[str, ...] = ()
    # how several processes share the model: "ddp" (each holds all of it, gradients averaged)
    # or "fsdp" (PyTorch's fully_shard: parameters, gradients and optimiser state split over
    # the processes, each transformer block gathered only while it computes - the full-size
    # model's optimiser state does not fit one GPU)
    parallel: str = "ddp"
    # embodied chain of thought (GigaBrain-0's 2D trajectory): train the trajectory head on the
    # gripper's path over the chunk in the first camera, from the states through the simulated
    # scene's kinematics and camera (sim/trajectory.py); it trains the decoder and the vision
    # to find where the arm is going (the cube, then the bowl)
    trajectory: bool = False
    objective: str = "policy"
    # the world model's value target: gamma ** (frames to the episode's end) after a success
    # with no takeover after the frame, 0 after anything else (sparse reward 1 at a detected
    # success, discounted per frame; a takeover is the policy's failure: model/advantage.py)
    gamma: float = HILR_GAMMA
    # which of the --dataset frames are samples (data.SAMPLE_FRAMES; the demos': all)
    frames: str = "all"
    # which samples the ramp objective's unconditioned term learns from (losses.UNCONDITIONED):
    # "all", the paper's; "expert", the demonstrations' and the operator's frames only
    unconditioned: str = "all"

    def __post_init__(self) -> None:
        if self.frames not in SAMPLE_FRAMES:
            raise ValueError(f"frames: expected one of {SAMPLE_FRAMES}, got {self.frames!r}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective: expected one of {OBJECTIVES}, got {self.objective!r}")
        if self.unconditioned not in UNCONDITIONED:
            raise ValueError(
                f"unconditioned: expected one of {UNCONDITIONED}, got {self.unconditioned!r}"
            )
        if self.unconditioned != "all" and self.objective != "ramp":
            raise ValueError(
                f"unconditioned: {self.unconditioned!r} is a choice of the ramp objective, not "
                f"of {self.objective!r}"
            )
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"gamma: must be in (0, 1], got {self.gamma}")
        if self.parallel not in PARALLEL:
            raise ValueError(f"parallel: expected one of {PARALLEL}, got {self.parallel!r}")
        if len(set(self.delta_joints)) != len(self.delta_joints):
            raise ValueError(f"delta_joints: names repeat in {list(self.delta_joints)}")
        for name in ("steps", "batch_size", "save_every", "log_every", "stride"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0 or self.weight_decay < 0 or self.warmup_steps < 0:
            raise ValueError("lr > 0, weight_decay >= 0 and warmup_steps >= 0 are required")
        if not 0 <= self.ema_decay < 1 or not 0 <= self.min_lr_ratio <= 1:
            raise ValueError("ema_decay must be in [0, 1), min_lr_ratio in [0, 1]")

    def lr_at(self, step: int) -> float:
        """Learning rate of update ``step`` (0-based): linear warm-up, then cosine."""
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        span = max(1, self.steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.lr * (self.min_lr_ratio + (1.0 - self.min_lr_ratio) * cosine)


@dataclass
class WorldBatch:
    """The world model's inputs and targets for one batch (shapes as in world_model_loss):
    the observation, the chunk executed from it, and the frame ``horizon`` frames later with
    its value target and normalised state; ``hold_actions``, the arm holding still, is what
    the prediction that conditions the policy is made from (as the runtime makes it)."""

    images: torch.Tensor
    image_mask: torch.Tensor
    state: torch.Tensor
    actions: torch.Tensor
    hold_actions: torch.Tensor
    future_images: torch.Tensor
    future_value: torch.Tensor
    future_proprio: torch.Tensor
    seed: int  # the step's draws (flow noise and time), the same on every process


class _Loss(nn.Module):
    """The objective as a module, so DistributedDataParallel sees the forward it syncs."""

    def __init__(
        self,
        policy: GigaBrainPolicy,
        world_model: nn.Module | None,
        objective: str,
        unconditioned: str = "all",
    ) -> None:
        super().__init__()
        self.policy = policy
        self.world_model = world_model
        self.objective = objective
        self.unconditioned = unconditioned

    def _world_tokens(self, w: WorldBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's current tokens (the latent encoder trained through them) and its
        target s_future, encoded once per update."""
        return self.world_model.encode(
            w.images, w.state, w.future_images, w.future_value, w.future_proprio
        )

    def _world_loss(
        self, w: WorldBatch, tokens: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> torch.Tensor:
        actions = w.actions
        still = self.policy.cfg.ramp.world_model_still_prob
        if still > 0.0:
            # some samples asked about a still arm, answered with the recorded future: what
            # the policy is conditioned on (a still-arm query) becomes the likely future
            gen = torch.Generator(device=w.images.device).manual_seed(w.seed + 3)
            pick = torch.rand(actions.shape[0], generator=gen, device=w.images.device) < still
            actions = torch.where(pick[:, None, None], w.hold_actions, w.actions)
        current, target = tokens if tokens is not None else self._world_tokens(w)
        return world_model_flow_loss(
            self.world_model,
            current,
            w.image_mask,
            actions,
            target,
            generator=torch.Generator(device=w.images.device).manual_seed(w.seed),
        )

    def forward(self, batch: PolicyBatch, world: WorldBatch | None = None) -> torch.Tensor:
        if self.objective == "policy":
            return policy_loss(self.policy, batch)[0]
        if world is None:
            raise ValueError(f"objective {self.objective}: needs the world model's batch")
        if self.objective == "world-model":
            return self._world_loss(world)
        # the draw of which samples see the world model, from the step's seed (exact resume)
        masks = torch.Generator(device=world.images.device).manual_seed(world.seed + 2)
        if self.policy.cfg.ramp.world_model_drop_prob >= 1.0:
            # the world model is never seen: advantage conditioning alone (RECAP-like)
            return self._ramp(batch, masks)
        wm = self.world_model
        # the prediction the policy is conditioned on, made as at run time: from the arm
        # holding still, never from the chunk being learnt (a prediction from the target
        # actions hands them to the policy through z - it learns to read its answer off the
        # world model, and at run time, fed its previous chunk, to repeat itself)
        # (the current observation encoded once, for this prediction and the world model's
        # own loss: the latent encoder, at the images' full size, is the update's costliest
        # forward pass)
        tokens = self._world_tokens(world)
        with torch.no_grad():
            gen = torch.Generator(device=world.images.device).manual_seed(world.seed + 1)
            noise = torch.randn(tokens[1].shape, generator=gen, device=world.images.device)
            z, value, _ = wm.sample(tokens[0].detach(), world.image_mask, world.hold_actions, noise)
        batch = dataclasses.replace(batch, wm_tokens=z, value=value)
        return self._ramp(batch, masks) + self._world_loss(world, tokens)

    def _ramp(self, batch: PolicyBatch, masks: torch.Generator) -> torch.Tensor:
        return ramp_loss(self.policy, batch, generator=masks, unconditioned=self.unconditioned)[0]


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _distributed() -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return _Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def _flat_state(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """AdamW's state as named tensors (safetensors) plus the JSON-able rest."""
    sd = optimizer.state_dict()
    tensors, meta = {}, {"param_groups": sd["param_groups"], "state": {}}
    for idx, st in sd["state"].items():
        meta["state"][str(idx)] = {}
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{idx}.{k}"] = _full(v).detach().contiguous().cpu()
            else:
                meta["state"][str(idx)][k] = v
    return tensors, meta


def _load_flat_state(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict
) -> None:
    state: dict[int, dict[str, Any]] = {int(i): dict(v) for i, v in meta["state"].items()}
    for key, t in tensors.items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = t
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def _full(t: torch.Tensor) -> torch.Tensor:
    """A plain tensor of the whole value (a collective for a sharded DTensor: every process
    must call it, in the same order)."""
    from torch.distributed.tensor import DTensor

    return t.full_tensor() if isinstance(t, DTensor) else t


def _like(full: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``full`` laid out as ``ref``: this process's shard where ``ref`` is a sharded DTensor."""
    from torch.distributed.tensor import DTensor, distribute_tensor

    if isinstance(ref, DTensor):
        return distribute_tensor(full.to(ref.dtype), ref.device_mesh, ref.placements)
    return full.to(device=ref.device, dtype=ref.dtype)


def _full_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: _full(v).detach().cpu() for k, v in module.state_dict().items()}


def _shard_blocks(module: nn.Module) -> None:
    """FSDP2 over ``module``: each transformer block (every member of a ModuleList) is one unit,
    gathered for its own forward and backward; the rest belongs to the root unit."""
    from torch.distributed.fsdp import fully_shard

    for sub in module.modules():
        if isinstance(sub, nn.ModuleList):
            for block in sub:
                fully_shard(block)
    fully_shard(module)


class Trainer:
    def __init__(
        self,
        cfg: ModelConfig,
        dataset_dir: Path | Sequence[Path],
        out: Path,
        config: TrainConfig,
        *,
        init_weights: Path | None = None,
        start: EngineSource | None = None,
        norm_stats: Path | None = None,
        progress: bool = True,
        demos: Sequence[Path] = (),
    ) -> None:
        """``cfg`` with ``init_weights`` (or drawn from ``config.seed``), or ``start``: a model
        already loaded with its manifest (``checkpoint_source``: fine-tuning a GigaBrain-0
        checkpoint in its own slot layout and tokenizer; ``cfg`` is then ``start.cfg``).
        ``norm_stats``: a ``norm_stats.json`` to keep instead of computing the dataset's (a
        fine-tuned policy keeps its inputs and outputs where the starting weights had them)."""
        from gigabrain_runtime.inference.export import preset_source

        if start is not None and init_weights is not None:
            raise ValueError("init_weights: not with a loaded start (it has its weights)")
        if start is not None:
            cfg = start.cfg
        self.cfg, self.config, self.out = cfg, config, Path(out)
        self.dist = _distributed()
        self.progress = progress and self.dist.main
        self.device = torch.device(
            f"cuda:{self.dist.local_rank}" if torch.cuda.is_available() else "cpu"
        )
        emb = get_embodiment(config.robot)
        if config.batch_size % self.dist.world:
            raise ValueError(
                f"batch_size: {config.batch_size} does not split over {self.dist.world} processes"
            )
        a = cfg.action_expert
        self.data = LeRobotDataset(
            dataset_dir,
            joint_names=emb.joint_names,
            cameras=emb.cameras,
            image_size=cfg.vision.image_size,
            horizon=a.horizon,
            stride=config.stride,
            resize=cfg.variant.image_resize,
            progress=self.progress,
            expert=list(demos),
            frames=config.frames,
        )
        if len(self.data) < config.batch_size:
            raise ValueError(
                f"dataset: {len(self.data)} samples, fewer than one batch ({config.batch_size})"
            )
        self.out.mkdir(parents=True, exist_ok=True)
        unknown = [j for j in config.delta_joints if j not in emb.joint_names]
        if unknown:
            raise ValueError(
                f"delta_joints: {unknown} are not joints of {emb.name} ({list(emb.joint_names)})"
            )
        if start is None:
            start = preset_source(cfg, weights=init_weights, seed=config.seed, embodiments=[emb])
        family = cfg.variant.slot_family
        # the robot in the model's dimensions (the family's slot, constants, delta dimensions
        # and --delta-joints); the statistics are of what the model sees and predicts there
        shape = EmbodimentEntry.from_embodiment(
            emb, family=family, delta_joints=config.delta_joints
        )
        self.delta = np.asarray(shape.delta_mask, dtype=bool)
        states, actions = self.data.states_and_actions()
        states, actions = shape.model_order(states), shape.model_order(actions)
        if self.delta.any():
            # every chunk point minus the state it was predicted from
            at, chunks = self.data.chunks()
            offsets = (
                shape.model_order(chunks) - np.where(self.delta, shape.model_order(at), 0)[:, None]
            )
            actions = offsets.reshape(-1, offsets.shape[-1])
        stats = (
            compute_norm_stats(states, actions, cfg.state_dim)
            if norm_stats is None
            else json.loads(Path(norm_stats).read_text())
        )
        if self.dist.main:
            write_norm_stats(stats, self.out)
            (self.out / "train_config.json").write_text(
                json.dumps(
                    {
                        "preset": cfg.name,
                        "model": cfg.to_dict(),
                        "dataset": [str(d) for d in self.data.roots[: -len(demos) or None]],
                        "demos": [str(d) for d in demos],
                        "init_weights": str(init_weights) if init_weights else None,
                        "start": start.manifest.weights_source,
                        "world_size": self.dist.world,
                        **dataclasses.asdict(config),
                    },
                    indent=2,
                )
                + "\n"
            )
        norm = parse_norm_stats(stats, str(norm_stats or "norm_stats (computed from the dataset)"))
        entry = EmbodimentEntry.from_embodiment(
            emb,
            family=family,
            state_norm=norm.state,
            action_norm=norm.action,
            delta_joints=config.delta_joints,
        )
        manifest = dataclasses.replace(start.manifest, embodiments={emb.name: entry})
        self.pre = Preprocessor(manifest)
        self.entry = entry
        self.trajectories: list[np.ndarray] | None = None
        if config.trajectory:
            if not cfg.variant.has("trajectory"):
                raise ValueError(f"trajectory: model {cfg.name} has no trajectory head")
            from gigabrain_runtime.sim.trajectory import ImageTrajectory

            camera = next(c for c in entry.camera_slots if c)
            projector = ImageTrajectory(emb, camera)
            self.trajectories = [
                np.clip(projector.points(ep.states), 0.0, 1.0).astype(np.float32)
                for ep in self.data.episodes
            ]
            projector.close()
        self.robot = emb.name
        self.policy = start.policy.to(self.device).train()
        # kept as it came (drawn or loaded) and saved with the policy: the RAMP loop trains it
        self.world_model = start.world_model
        objective = config.objective
        uses_world = objective == "world-model" or (
            objective == "ramp" and cfg.ramp.world_model_drop_prob < 1.0
        )
        if uses_world and self.world_model is None:
            raise ValueError(f"objective {objective}: model {cfg.name} has no world model")
        needed = []  # (per-frame feature, why this run needs it)
        if objective == "ramp":
            why = (
                "the ramp objective needs advantage labels (bag label --advantage, then bag export)"
            )
            needed.append(("indicator", why))
        if config.unconditioned == "expert":
            why = "unconditioned='expert' needs to know whose actions each frame holds"
            needed.append(("intervention", why))
        for feature, why in needed:
            lacking = [
                f"{ep.source}:{ep.index}"
                for ep in self.data.episodes
                if getattr(ep, feature) is None
            ]
            if lacking:
                raise ValueError(
                    f"dataset: episodes {lacking[:5]} have no {feature!r} feature; {why}"
                )
        if uses_world:
            self.world_model = self.world_model.to(self.device).train()
        self.loss_module: nn.Module = _Loss(
            self.policy, self.world_model if uses_world else None, objective, config.unconditioned
        )
        if self.dist.world > 1 and config.parallel == "fsdp":
            _shard_blocks(self.loss_module)  # the policy's parameters become shards
        elif self.dist.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.loss_module = DistributedDataParallel(
                self.loss_module, find_unused_parameters=True
            )
        # the parameters this objective trains (the world model's under a prefix), taken after
        # sharding: fully_shard replaces the parameters with their shards
        self.trained: list[tuple[str, nn.Parameter]] = []
        if objective != "world-model":
            self.trained += list(self.policy.named_parameters())
        if uses_world:
            # under ramp the latent encoder stays as the world-model stage left it (a frozen
            # VAE, as the paper's Wan2.2 latents): trained along, it moves its own targets and
            # the joint run diverged (L_WM 0.93 -> 6.3 in 500 updates)
            frozen = "encoder." if objective == "ramp" else None
            for n, p in self.world_model.named_parameters():
                if frozen and n.startswith(frozen):
                    p.requires_grad_(False)
                else:
                    self.trained.append((f"world_model.{n}", p))
        self.ema = [p.detach().clone().float() for _, p in self.trained]
        decay, no_decay = [], []
        for name, p in self.trained:
            (no_decay if p.ndim < 2 or name.endswith("bias") else decay).append(p)
        self.optimizer = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": config.weight_decay},
                {"params": no_decay, "weight_decay": 0.0},
            ],
            lr=config.lr,
            betas=(0.9, 0.95),
        )
        self.step = 0
        self.history: list[tuple[int, float, float, float]] = []  # step, loss, lr, samples/s
        self._targets: dict[int, np.ndarray] = {}  # episode -> its frames' value targets

    # ---- batches -------------------------------------------------------------------------------
    def _global_draw(self, step: int) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
        """Batch ``step``'s sample indices, flow noise and flow times, for the global batch."""
        c, a = self.config, self.cfg.action_expert
        rng = np.random.default_rng([c.seed, step])
        idx = rng.integers(0, len(self.data), c.batch_size)
        gen = torch.Generator().manual_seed(int(rng.integers(0, 2**62)))
        noise = torch.randn((c.batch_size, a.horizon, a.action_dim), generator=gen)
        tau = sample_flow_time(c.batch_size, torch.device("cpu"), gen)
        return idx, noise, tau

    def batch(self, step: int) -> PolicyBatch:
        idx, noise, tau = self._global_draw(step)
        mine = slice(self.dist.rank, None, self.dist.world)
        a = self.cfg.action_expert
        rng = np.random.default_rng(0)
        feeds: dict[str, list[np.ndarray]] = {}
        actions, masks, paths = [], [], []
        n = len(self.entry.dims)
        for i in idx[mine]:
            if self.trajectories is not None:
                paths.append(self._trajectory(int(i)))
            s = self.data.sample(int(i))
            obs = Observation(
                images=s["images"], state=s["state"], instruction=s["task"], embodiment=self.robot
            )
            inputs = self.pre.policy_inputs(obs, Mode.EFFICIENT, rng)
            for k, v in inputs.feeds.items():
                if k != "noise":
                    feeds.setdefault(k, []).append(v[0])
            act = np.zeros((a.horizon, a.action_dim), np.float32)
            act[:, :n] = self.pre.model_actions(s["actions"], self.entry, inputs.state_normalized)
            actions.append(act)
            m = np.zeros(a.action_dim, bool)
            m[:n] = self.entry.robot_dims  # the loss is on the robot's joints, not constants
            masks.append(m)
        t = {k: torch.from_numpy(np.stack(v)).to(self.device) for k, v in feeds.items()}
        return PolicyBatch(
            images=t["images"],
            image_mask=t["image_mask"],
            tokens=t["tokens"],
            token_mask=t["token_mask"],
            state=t.get("state"),
            embodiment_id=t["embodiment_id"],
            actions=torch.from_numpy(np.stack(actions)).to(self.device),
            action_mask=torch.from_numpy(np.stack(masks)).to(self.device),
            flow_noise=noise[mine].to(self.device),
            flow_time=tau[mine].to(self.device),
            trajectory=torch.from_numpy(np.stack(paths)).to(self.device) if paths else None,
            indicator=(
                torch.tensor([self.data.indicator(int(i)) for i in idx[mine]], device=self.device)
                if self.config.objective == "ramp"
                else None
            ),
            expert=(
                torch.tensor([self.data.expert(int(i)) for i in idx[mine]], device=self.device)
                if self.config.unconditioned == "expert"
                else None
            ),
        )

    def world_batch(self, step: int) -> WorldBatch:
        """The world model's batch for update ``step`` (the same frames as :meth:`batch`):
        each frame, the chunk executed from it (the dataset's next ``horizon`` actions, as the
        engine's world graph takes them), the arm holding still there, and the frame
        ``horizon`` frames later with its value target (model/advantage.py ``value_targets``:
        ``gamma`` ** frames to the end after a success with no takeover after the frame,
        else 0)."""
        idx, _, _ = self._global_draw(step)
        mine = slice(self.dist.rank, None, self.dist.world)
        horizon = self.cfg.action_expert.horizon
        rng = np.random.default_rng(0)
        cols: dict[str, list[np.ndarray]] = {}
        for i in idx[mine]:
            s = self.data.sample(int(i))
            f = self.data.future(int(i), horizon)
            now, later = (
                self.pre.world_feeds(
                    Observation(
                        images=x["images"],
                        state=x["state"],
                        instruction=s["task"],
                        embodiment=self.robot,
                    ),
                    s["actions"],
                    rng,
                )[0]
                for x in (s, f)
            )
            value = self._value_targets(self.data.frame(int(i))[0])[f["frame"]]
            hold = self.pre.world_actions(still_chunk(s["state"], horizon), self.entry)
            for key, v in (
                ("images", now["images"][0]),
                ("image_mask", now["image_mask"][0]),
                ("state", now["state"][0]),
                ("actions", now["actions"][0]),
                ("hold_actions", hold[0]),
                ("future_images", later["images"][0][:, None]),  # one future latent frame
                ("future_value", np.float32(value)),
                ("future_proprio", later["state"][0]),
            ):
                cols.setdefault(key, []).append(np.asarray(v))
        t = {k: torch.from_numpy(np.stack(v)).to(self.device) for k, v in cols.items()}
        seed = int(np.random.default_rng([self.config.seed, step, 1]).integers(0, 2**62))
        return WorldBatch(**t, seed=seed)

    def _value_targets(self, k: int) -> np.ndarray:
        """Episode ``k``'s per-frame value targets (computed once)."""
        if k not in self._targets:
            ep = self.data.episodes[k]
            flags = (
                ep.intervention if ep.intervention is not None else np.zeros(len(ep.states), bool)
            )
            self._targets[k] = value_targets(ep.outcome == "success", flags, self.config.gamma)
        return self._targets[k]

    def _trajectory(self, i: int) -> np.ndarray:
        """Sample ``i``'s target [points, 2]: the gripper in the image at evenly spaced points
        of its chunk (the last at the chunk's end; past the episode's end it stays there)."""
        k, t = self.data.frame(i)
        path = self.trajectories[k]
        a = self.cfg.action_expert
        steps = t + np.round(
            np.arange(1, a.trajectory_points + 1) * a.horizon / a.trajectory_points
        )
        return path[np.minimum(steps.astype(int), len(path) - 1)]

    # ---- one update ----------------------------------------------------------------------------
    def train_step(self) -> float:
        c = self.config
        for group in self.optimizer.param_groups:
            group["lr"] = c.lr_at(self.step)
        batch = self.batch(self.step)
        world = self.world_batch(self.step) if self.config.objective != "policy" else None
        self.optimizer.zero_grad(set_to_none=True)
        use_bf16 = self.device.type == "cuda"
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=use_bf16):
            loss = self.loss_module(batch, world)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in self.trained], c.grad_clip)
        self.optimizer.step()
        decay = min(c.ema_decay, (1 + self.step) / (10 + self.step))
        with torch.no_grad():
            for e, (_, p) in zip(self.ema, self.trained, strict=True):
                e.mul_(decay).add_(p.detach().float(), alpha=1.0 - decay)
        self.step += 1
        value = loss.detach()
        if self.dist.world > 1:
            import torch.distributed as dist

            dist.all_reduce(value)
            value /= self.dist.world
        return float(value)

    # ---- checkpoints ---------------------------------------------------------------------------
    def save(self) -> Path:
        """Write a checkpoint (every process takes part: sharded values are gathered; the main
        process writes)."""
        from safetensors.torch import save_file

        directory = self.out / CHECKPOINTS / f"step-{self.step:07d}"
        names = [n for n, _ in self.trained]
        model = _full_state(self.policy)
        ema = {n: _full(e).contiguous().cpu() for n, e in zip(names, self.ema, strict=True)}
        tensors, meta = _flat_state(self.optimizer)
        if not self.dist.main:
            return directory
        tmp = directory.with_name(directory.name + ".tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        save_weights(
            tmp / "model.safetensors",
            preset=self.cfg.name,
            policy=model,
            world_model=self.world_model,
        )
        save_file(ema, str(tmp / "ema.safetensors"))
        save_file(tensors, str(tmp / "optimizer.safetensors"))
        (tmp / "trainer.json").write_text(
            json.dumps({"step": self.step, "optimizer": meta, "history": self.history}) + "\n"
        )
        tmp.rename(directory)
        return directory

    def latest_checkpoint(self) -> Path | None:
        found = sorted((self.out / CHECKPOINTS).glob("step-???????"))
        return found[-1] if found else None

    def resume(self, directory: Path) -> None:
        from safetensors.torch import load_file

        file = directory / "model.safetensors"
        if self.config.parallel == "fsdp" and self.dist.world > 1:
            tensors = load_file(str(file))
            with torch.no_grad():
                for k, v in self.policy.state_dict().items():
                    v.copy_(_like(tensors[f"policy.{k}"], v))
        else:
            load_weights(file, policy=self.policy, world_model=self.world_model, strict=True)
        ema = load_file(str(directory / "ema.safetensors"))
        self.ema = [_like(ema[n], p).float() for n, p in self.trained]
        state = json.loads((directory / "trainer.json").read_text())
        flat = load_file(str(directory / "optimizer.safetensors"))
        ordered = [p for group in self.optimizer.param_groups for p in group["params"]]
        for key, t in flat.items():
            idx = int(key.split(".", 1)[0])
            if t.shape == ordered[idx].shape:  # a DTensor's shape is the whole tensor's
                flat[key] = _like(t, ordered[idx])
        _load_flat_state(self.optimizer, flat, state["optimizer"])
        self.step = int(state["step"])
        self.history = [tuple(h) for h in state["history"]]

    def export_weights(self) -> Path:
        """The EMA weights, as ``export --weights`` reads them (every process takes part)."""
        path = self.out / "weights.safetensors"
        names = [n for n, _ in self.trained]
        ema = {n: _full(e).cpu() for n, e in zip(names, self.ema, strict=True)}
        state = _full_state(self.policy)
        world = None if self.world_model is None else dict(self.world_model.state_dict())
        if self.dist.main:
            for n, e in ema.items():
                head, _, rest = n.partition(".")
                if head == "world_model" and world is not None:
                    world[rest] = e.to(world[rest].dtype)
                else:
                    state[n] = e.to(state[n].dtype)
            save_weights(path, preset=self.cfg.name, policy=state, world_model=world)
        return path

    # ---- the loop ------------------------------------------------------------------------------
    def run(self, stop_after: int | None = None) -> Path:
        """Train to ``config.steps`` (resuming from the newest checkpoint), or stop after step
        ``stop_after`` of the same schedule with a checkpoint and the EMA weights written: a
        stage of a longer run, which the same command without it (or with a later step)
        continues exactly."""
        from tqdm import tqdm

        c = self.config
        if stop_after is not None and not 1 <= stop_after <= c.steps:
            raise ValueError(f"stop_after: must be in [1, steps={c.steps}], got {stop_after}")
        end = c.steps if stop_after is None else stop_after
        latest = self.latest_checkpoint()
        if latest is not None:
            self.resume(latest)
            if self.progress:
                print(f"resuming from {latest} (step {self.step})")
        bar = tqdm(
            total=c.steps,
            initial=self.step,
            desc="training",
            unit="step",
            disable=not self.progress,
        )
        window: list[float] = []
        t0 = time.perf_counter()
        start_step = self.step
        while self.step < end:
            loss = self.train_step()
            window.append(loss)
            if self.step % c.log_every == 0 or self.step == end:
                rate = (self.step - start_step) * c.batch_size / (time.perf_counter() - t0)
                mean = float(np.mean(window))
                self.history.append((self.step, mean, c.lr_at(self.step - 1), rate))
                bar.set_postfix(loss=f"{mean:.4f}", samples_s=f"{rate:.1f}")
                window = []
            bar.update(1)
            if self.step % c.save_every == 0 or self.step == end:
                self.save()
        bar.close()
        path = self.export_weights()
        if self.dist.main:
            self._write_curve()
        return path

    def _write_curve(self) -> None:
        with open(self.out / "loss.csv", "w") as f:
            f.write("step,loss,lr,samples_per_s\n")
            for step, loss, lr, rate in self.history:
                f.write(f"{step},{loss:.6f},{lr:.6g},{rate:.2f}\n")
        if self.history:
            plot_loss(self.history, self.out / "loss.png")


def plot_loss(history: list[tuple[int, float, float, float]], path: Path) -> None:
    """The loss curve (log scale) as a PNG, drawn with OpenCV."""
    import cv2

    w, h, m = 800, 400, 50
    img = np.full((h, w, 3), 255, np.uint8)
    steps = np.array([s for s, *_ in history], float)
    loss = np.log10(np.maximum([x for _, x, *_ in history], 1e-8))
    lo, hi = float(loss.min()), float(loss.max())
    hi = hi if hi > lo else lo + 1.0
    smax = max(float(steps.max()), 1.0)
    pts = np.stack(
        [m + steps / smax * (w - 2 * m), h - m - (loss - lo) / (hi - lo) * (h - 2 * m)], axis=1
    ).astype(np.int32)
    cv2.rectangle(img, (m, m), (w - m, h - m), (0, 0, 0), 1)
    cv2.polylines(img, [pts], False, (200, 60, 20), 2)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(img, f"loss {10**hi:.3g}", (5, m - 10), font, 0.45, (0, 0, 0), 1)
    cv2.putText(img, f"{10**lo:.3g}", (5, h - m + 15), font, 0.45, (0, 0, 0), 1)
    cv2.putText(img, "step 0", (m, h - m + 20), font, 0.45, (0, 0, 0), 1)
    cv2.putText(img, f"step {int(smax)}", (w - m - 90, h - m + 20), font, 0.45, (0, 0, 0), 1)
    cv2.putText(img, "training loss (log scale)", (w // 2 - 100, 25), font, 0.6, (0, 0, 0), 1)
    cv2.imwrite(str(path), img)

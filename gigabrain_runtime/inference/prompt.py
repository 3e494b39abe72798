"""Prompts of the model variants (pure Python + NumPy).

``gigabrain-0``: the official ``PromptTokenizerTransform`` at inference
(``discrete_state_input=True``, ``encode_sub_task_input=True``): the task is lower-cased,
stripped and ``_`` becomes a space; an optional ``" subtask: "`` part becomes a ``Subtask:``
field; the quantile-normalised state is discretised into 256 bins
(``bucketize(x, linspace(-1, 1, 257)[:-1]) - 1``, so x <= -1 gives -1 and x > 0.9921875 gives
255) and written as integers::

    Task: pick up the cup, State: 197 108 21 -1 ...;\\n

``plain``: the instruction as it is.
"""

from __future__ import annotations

import numpy as np

PROMPT_FORMATS = ("plain", "gigabrain-0")
STATE_BINS = 256
_BIN_EDGES = np.linspace(-1.0, 1.0, STATE_BINS + 1, dtype=np.float32)[:-1]
_SUBTASK = " subtask: "


def discretize_state(state_normalized: np.ndarray) -> np.ndarray:
    """float32 [n] in (about) [-1, 1] -> int64 [n] bins in -1..255, as torch.bucketize does
    (right=False: the first edge >= x) minus one."""
    x = np.asarray(state_normalized, dtype=np.float32)
    return np.searchsorted(_BIN_EDGES, x, side="left").astype(np.int64) - 1


def gigabrain0_prompt(instruction: str, state_normalized: np.ndarray) -> str:
    """The exact text the official pipeline tokenises for ``instruction`` and the normalised
    state (see the module docstring)."""
    if not isinstance(instruction, str):
        raise ValueError(f"instruction: expected str, got {type(instruction).__name__}")
    cleaned = instruction.lower().strip().replace("_", " ")
    main_task = cleaned.split(_SUBTASK)[0]
    bins = " ".join(str(int(b)) for b in discretize_state(state_normalized))
    if _SUBTASK in cleaned:
        sub_task = cleaned.split(_SUBTASK)[1].split("\n")[0]
        return f"Task: {main_task}, Subtask: {sub_task}, State: {bins};\n"
    return f"Task: {main_task}, State: {bins};\n"


def build_prompt(fmt: str, instruction: str, state_normalized: np.ndarray | None) -> str:
    """The prompt of format ``fmt`` (one of :data:`PROMPT_FORMATS`)."""
    if fmt == "plain":
        if not isinstance(instruction, str):
            raise ValueError(f"instruction: expected str, got {type(instruction).__name__}")
        return instruction
    if fmt == "gigabrain-0":
        if state_normalized is None:
            raise ValueError("state: the gigabrain-0 prompt needs the normalised state")
        return gigabrain0_prompt(instruction, state_normalized)
    raise ValueError(f"prompt: unknown format {fmt!r} (known: {', '.join(PROMPT_FORMATS)})")

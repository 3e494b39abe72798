"""Instruction tokenizers (pure Python, no network).

The released GigaBrain-0 uses PaliGemma-2's SentencePiece vocabulary, which cannot be fetched at
run time here; models built from presets use :class:`ByteTokenizer` (UTF-8 bytes offset past
three special ids), which fits any vocabulary of at least 259 entries. The tokenizer in use is
recorded in the engine manifest, so an engine is never fed ids from a different tokenizer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PAD, BOS, EOS = 0, 1, 2


@dataclass(frozen=True, kw_only=True)
class ByteTokenizer:
    max_tokens: int
    kind: str = "bytes"

    def __post_init__(self) -> None:
        if self.max_tokens < 2:
            raise ValueError(f"tokenizer.max_tokens must be >= 2, got {self.max_tokens}")

    @property
    def min_vocab_size(self) -> int:
        return 256 + 3

    def encode(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """-> ids int64 [max_tokens], mask bool [max_tokens]. Long instructions are truncated
        (keeping BOS and EOS)."""
        if not isinstance(text, str):
            raise ValueError(f"instruction: expected str, got {type(text).__name__}")
        body = [b + 3 for b in text.encode("utf-8")][: self.max_tokens - 2]
        ids = [BOS, *body, EOS]
        out = np.full(self.max_tokens, PAD, dtype=np.int64)
        out[: len(ids)] = ids
        mask = np.zeros(self.max_tokens, dtype=bool)
        mask[: len(ids)] = True
        return out, mask

    def decode(self, ids: np.ndarray) -> str:
        data = bytes(int(i) - 3 for i in ids if int(i) >= 3)
        return data.decode("utf-8", errors="replace")

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "max_tokens": self.max_tokens}


def tokenizer_from_dict(data: dict[str, object]) -> ByteTokenizer:
    kind = data.get("kind")
    if kind != "bytes":
        raise ValueError(f"tokenizer.kind: unknown tokenizer {kind!r} (known: 'bytes')")
    return ByteTokenizer(max_tokens=int(data["max_tokens"]))  # type: ignore[arg-type]

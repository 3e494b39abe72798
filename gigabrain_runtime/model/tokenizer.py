"""Instruction tokenizers (no network, ever).

* :class:`SentencePieceTokenizer`: the PaliGemma/Gemma SentencePiece model of a GigaBrain-0
  checkpoint, read from a local ``tokenizer.model`` (the file of the
  ``google/paligemma-3b-pt-224`` or ``paligemma2-3b-pt-224`` repository). Gemma's conventions:
  pad 0, eos 1, bos 2; ``<bos>`` prepended, no ``<eos>``, right-padded with pad to the
  pipeline's length (200), as the official ``PromptTokenizerTransform`` does with
  ``add_special_tokens=True``.
* :class:`ByteTokenizer`: UTF-8 bytes offset past three special ids, for this project's presets,
  which ship no tokenizer; fits any vocabulary of at least 259 entries.

The tokenizer in use is recorded in the engine manifest (kind, file, sha256), so an engine is
never fed ids from a different tokenizer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from gigabrain_runtime.hashing import sha256_file

PAD, BOS, EOS = 0, 1, 2  # ByteTokenizer's ids
# Gemma's special ids, which GigaBrain-0's embeddings were trained with
GEMMA_SPECIAL_IDS = {"pad": 0, "eos": 1, "bos": 2}
SENTENCEPIECE_FILE = "tokenizer.model"


class Tokenizer(Protocol):
    kind: str
    max_tokens: int

    def encode(self, text: str) -> tuple[np.ndarray, np.ndarray]: ...

    def check_vocabulary(self, vocab_size: int) -> None: ...

    def to_dict(self) -> dict[str, object]: ...


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

    def check_vocabulary(self, vocab_size: int) -> None:
        if vocab_size < self.min_vocab_size:
            raise ValueError(
                f"decoder.vocab_size={vocab_size} is below the byte tokenizer's "
                f"{self.min_vocab_size}"
            )

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


@dataclass(frozen=True, kw_only=True)
class SentencePieceTokenizer:
    """A SentencePiece model file; ids and mask as GigaBrain-0's pipeline makes them."""

    path: Path
    max_tokens: int
    kind: str = "sentencepiece"
    _sp: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        path = Path(self.path)
        if path.is_dir():
            path = path / SENTENCEPIECE_FILE
        if not path.is_file():
            raise FileNotFoundError(
                f"tokenizer: no {SENTENCEPIECE_FILE} at {self.path} (the SentencePiece model of "
                "google/paligemma-3b-pt-224; see the README)"
            )
        if self.max_tokens < 2:
            raise ValueError(f"tokenizer.max_tokens must be >= 2, got {self.max_tokens}")
        import sentencepiece as spm

        try:
            sp = spm.SentencePieceProcessor(model_file=str(path))
        except (RuntimeError, OSError) as exc:
            raise ValueError(f"tokenizer: {path} is not a SentencePiece model ({exc})") from None
        object.__setattr__(self, "path", path)
        object.__setattr__(self, "_sp", sp)
        ids = {"pad": sp.pad_id(), "eos": sp.eos_id(), "bos": sp.bos_id()}
        if ids != GEMMA_SPECIAL_IDS:
            raise ValueError(
                f"tokenizer: {path} has special ids {ids}, not Gemma's {GEMMA_SPECIAL_IDS}: "
                "it is not the PaliGemma tokenizer this checkpoint was trained with"
            )

    @property
    def vocab_size(self) -> int:
        return int(self._sp.get_piece_size())

    @property
    def sha256(self) -> str:
        return sha256_file(self.path)

    def check_vocabulary(self, vocab_size: int) -> None:
        """ValueError unless every id this tokenizer can emit has an embedding row."""
        if self.vocab_size > vocab_size:
            raise ValueError(
                f"tokenizer: {self.path} has {self.vocab_size} pieces but the checkpoint embeds "
                f"{vocab_size} tokens: it does not match the checkpoint's vocabulary"
            )

    def encode(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """``<bos>`` + pieces, right-padded with pad (0) -> ids int64 [max_tokens], mask bool.
        A text that does not fit raises ValueError (the pipeline refuses it too)."""
        if not isinstance(text, str):
            raise ValueError(f"prompt: expected str, got {type(text).__name__}")
        ids = [GEMMA_SPECIAL_IDS["bos"], *self._sp.encode(text)]
        if len(ids) >= self.max_tokens:
            raise ValueError(
                f"prompt: {len(ids)} tokens, the checkpoint takes fewer than {self.max_tokens} "
                f"(shorten the instruction): {text!r}"
            )
        out = np.full(self.max_tokens, GEMMA_SPECIAL_IDS["pad"], dtype=np.int64)
        out[: len(ids)] = ids
        mask = np.zeros(self.max_tokens, dtype=bool)
        mask[: len(ids)] = True
        return out, mask

    def decode(self, ids: np.ndarray) -> str:
        return str(self._sp.decode([int(i) for i in ids if int(i) > 2]))

    def to_dict(self, *, relative_to: Path | None = None) -> dict[str, object]:
        file = self.path.name if relative_to is not None else str(self.path)
        return {
            "kind": self.kind,
            "file": file,
            "sha256": self.sha256,
            "vocab_size": self.vocab_size,
            "max_tokens": self.max_tokens,
        }


def tokenizer_from_dict(data: dict[str, Any], directory: str | Path | None = None) -> Tokenizer:
    """The tokenizer a manifest describes; a relative ``file`` is read from ``directory`` (the
    engine) and must still have the recorded sha256."""
    kind = data.get("kind")
    if kind == "bytes":
        return ByteTokenizer(max_tokens=int(data["max_tokens"]))
    if kind == "sentencepiece":
        file = Path(str(data["file"]))
        if not file.is_absolute() and directory is not None:
            file = Path(directory) / file
        tok = SentencePieceTokenizer(path=file, max_tokens=int(data["max_tokens"]))
        want = data.get("sha256")
        if want and tok.sha256 != want:
            raise ValueError(
                f"tokenizer: {file} does not match the manifest's sha256 (re-run export)"
            )
        return tok
    raise ValueError(
        f"tokenizer.kind: unknown tokenizer {kind!r} (known: 'bytes', 'sentencepiece')"
    )

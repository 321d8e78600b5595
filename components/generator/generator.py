"""Loading a local causal language model and decoding one reply.

Any Hugging Face causal LM directory works (``AutoModelForCausalLM`` +
``AutoTokenizer``, local files only, never a hub download): the built-in model
that ``train.py`` writes, or a GPT-2 / DialoGPT / small instruct checkpoint
saved with ``save_pretrained``.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Union

from components.generator.config import GenerationConfig
from components.generator.prompt import Turn, build_prompt

logger = logging.getLogger(__name__)

META_FILE = "generator_meta.json"  # written by train.py next to the weights


class GeneratorLoadError(RuntimeError):
    """A checkpoint directory is missing or not a causal LM; the message says which."""


@dataclass(frozen=True)
class Generation:
    """One decoded reply and how it was made."""

    text: str  # decoded reply, special tokens removed, not yet post-processed
    model_id: str  # checkpoint name, e.g. "kestrel-gpt"
    model_version: str  # e.g. "kestrel-gpt-3f2a9c1d0b7e"
    prompt_tokens: int  # tokens, after left-truncation to the context window
    generated_tokens: int  # tokens, EOS included when produced
    latency_ms: float  # ms, wall clock of tokenisation + decoding
    hit_time_budget: bool  # True when decoding stopped at max_time_s

    def metadata(self) -> Dict[str, Any]:
        """The fields recorded on the tracker event (everything but the text)."""
        meta = asdict(self)
        meta.pop("text")
        return meta


class Generator:
    """A loaded causal LM that answers the last user turn of a conversation.

    ``generate`` is thread-safe for concurrent calls (inference only, no state
    is mutated) and holds no Rasa objects, so it can run in a worker thread.
    """

    def __init__(self, model, tokenizer, model_id: str, model_version: str,
                 system_prompt: Optional[str] = None) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.model_version = model_version
        self.system_prompt = system_prompt
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        # Context window in tokens (GPT-2: n_positions; others: max_position_embeddings).
        cfg = model.config
        self.context_tokens = int(
            getattr(cfg, "n_positions", None) or getattr(cfg, "max_position_embeddings", 1024)
        )

    @classmethod
    def load(cls, path: Union[str, Path], system_prompt: Optional[str] = None) -> "Generator":
        """Loads a checkpoint directory from local files only.

        The version comes from ``generator_meta.json`` when present (built-in or
        fine-tuned models); otherwise it is ``<dir name>-unversioned``.

        Raises:
            GeneratorLoadError: if ``path`` is not a directory holding a
                tokenizer and a causal LM.
        """
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(path)
        if not path.is_dir():
            raise GeneratorLoadError(
                f"Generator checkpoint '{path}' is not a directory; point `base_model` "
                f"at a folder saved with save_pretrained()."
            )
        if not (path / "config.json").is_file():
            raise GeneratorLoadError(
                f"Generator checkpoint '{path}' has no config.json, so it is not a folder "
                f"written by save_pretrained(); point `base_model` at one that is."
            )
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as e:
            raise GeneratorLoadError(f"Cannot load a causal LM from '{path}': {e}") from e
        meta = read_meta(path)
        model_id = meta.get("model_id", path.name)
        version = meta.get("version", f"{path.name}-unversioned")
        prompt = system_prompt if system_prompt is not None else meta.get("system_prompt")
        return cls(model, tokenizer, model_id, version, prompt)

    @property
    def n_parameters(self) -> int:
        """Number of parameters (weights shared between embedding and head count once)."""
        return sum(p.numel() for p in self.model.parameters())

    def generate(self, turns: Sequence[Turn], config: GenerationConfig = GenerationConfig(),
                 max_turns: int = 6) -> Generation:
        """Decodes the reply to the last user turn of ``turns``.

        The prompt is cut from the left so that prompt + ``max_new_tokens``
        fit the model's context window. Decoding stops at EOS, after
        ``config.max_new_tokens`` tokens, or when ``config.max_time_s`` seconds
        have passed (transformers' ``MaxTimeCriteria``).

        Raises:
            ValueError: if ``turns`` does not end with a user turn, or the
                context window cannot hold ``max_new_tokens`` plus one token.
        """
        import torch

        start = time.perf_counter()
        prompt = build_prompt(self.tokenizer, turns, max_turns, self.system_prompt)
        budget = self.context_tokens - config.max_new_tokens
        if budget < 1:
            raise ValueError(
                f"max_new_tokens ({config.max_new_tokens}) leaves no room for a prompt in "
                f"a {self.context_tokens}-token context; lower max_new_tokens."
            )
        ids = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
        ids = ids[:, -budget:]  # (1, T) with T <= budget: keep the most recent tokens
        attention = torch.ones_like(ids)
        if config.seed is not None:
            torch.manual_seed(config.seed)
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=ids,
                attention_mask=attention,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=self.tokenizer.eos_token_id,
                **config.to_generate_kwargs(),
            )  # (1, T + new)
        new = out[0, ids.shape[1]:]
        elapsed = time.perf_counter() - start
        ended = bool(len(new)) and int(new[-1]) == self.tokenizer.eos_token_id
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        return Generation(
            text=text,
            model_id=self.model_id,
            model_version=self.model_version,
            prompt_tokens=int(ids.shape[1]),
            generated_tokens=int(len(new)),
            latency_ms=round(elapsed * 1000.0, 1),
            hit_time_budget=(not ended and len(new) < config.max_new_tokens
                             and elapsed >= config.max_time_s),
        )


def read_meta(path: Union[str, Path]) -> Dict[str, Any]:
    """The checkpoint's ``generator_meta.json`` as a dict ({} when absent)."""
    meta_file = Path(path) / META_FILE
    if not meta_file.is_file():
        return {}
    return json.loads(meta_file.read_text(encoding="utf-8"))


def write_meta(path: Union[str, Path], meta: Dict[str, Any]) -> None:
    """Writes ``generator_meta.json`` into the checkpoint folder ``path``."""
    (Path(path) / META_FILE).write_text(json.dumps(meta, indent=2, default=str),
                                        encoding="utf-8")

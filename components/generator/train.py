"""Training the built-in GPT-2-style model, or fine-tuning a local checkpoint.

    python -m components.generator.train --corpus data/generator --out models/generator
    python -m components.generator.train --base-model path/to/gpt2 --out models/ft

The loss covers reply tokens only (prompt tokens get label -100), so the model
learns to answer, not to imitate customers. Training is seeded: the same
corpus, config and seed give the same weights and the same version string.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import random
import time
from pathlib import Path
from typing import AbstractSet, Dict, List, Optional, Sequence, Set, Tuple, Union

from components.generator import corpus as corpus_lib
from components.generator.atomic import atomic_dir
from components.generator.config import TrainConfig
from components.generator.generator import READS_PASSAGES, write_known, write_meta
from components.generator.guardrails import sentence_keys
from components.generator.prompt import Turn, build_prompt, format_passage

logger = logging.getLogger(__name__)

BUILTIN_MODEL_ID = "kestrel-gpt"
# Bump when a change here changes the weights trained from the same corpus and
# config: the GPT policy's generator cache and the version string include it.
TRAINING_CODE_VERSION = "4"  # 4: answers from passages (PassageExample); 3: KNOWN_FILE
Example = Tuple[List[int], List[int]]  # (input_ids, labels), both length T
# A customer question, its written answer and the passages the prompt shows for it
# (``prompt.format_passage`` texts): the right one, alone or with a distractor.
PassageExample = Tuple[str, str, Tuple[str, ...]]


def encode(tokenizer, examples, cfg: TrainConfig) -> List[Example]:
    """Tokenises (context, reply) or (context, reply, passages) into (input_ids, labels)
    of <= max_seq_len tokens.

    The prompt (with the passages in its system message, ``prompt.build_prompt``) is
    cut from the left when too long; labels are -100 on prompt tokens, so only the
    reply and its EOS are learned.
    """
    encoded = []
    for context, reply, *passages in examples:
        prompt = build_prompt(tokenizer, context, cfg.max_turns, cfg.system_prompt,
                              passages[0] if passages else ())
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        r_ids = tokenizer(reply, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        r_ids = r_ids[: cfg.max_seq_len * 3 // 4]  # keep a quarter for the context
        p_ids = p_ids[-(cfg.max_seq_len - len(r_ids)):]
        encoded.append((p_ids + r_ids, [-100] * len(p_ids) + r_ids))
    return encoded


def _batches(data: Sequence[Example], batch_size: int, pad_id: int, generator=None):
    """Yields padded (input_ids, attention_mask, labels), each (B, T_max)."""
    import torch

    order = (torch.randperm(len(data), generator=generator).tolist()
             if generator is not None else list(range(len(data))))
    for i in range(0, len(order), batch_size):
        chunk = [data[j] for j in order[i: i + batch_size]]
        width = max(len(ids) for ids, _ in chunk)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        labels = torch.full((len(chunk), width), -100, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, (x, y) in enumerate(chunk):
            ids[row, : len(x)] = torch.tensor(x)
            labels[row, : len(y)] = torch.tensor(y)
            mask[row, : len(x)] = 1
        yield ids, mask, labels


def evaluate_loss(model, data: Sequence[Example], batch_size: int, pad_id: int) -> float:
    """Mean cross-entropy per reply token (nats) over ``data``; exp() of it is perplexity.

    Raises:
        ValueError: if ``data`` is empty.
    """
    import torch

    if not data:
        raise ValueError("Cannot evaluate on an empty data set.")
    model.eval()
    total, count = 0.0, 0
    with torch.inference_mode():
        for ids, mask, labels in _batches(data, batch_size, pad_id):
            logits = model(input_ids=ids, attention_mask=mask).logits  # (B, T, V)
            shift_logits, shift_labels = logits[:, :-1], labels[:, 1:]
            loss = torch.nn.functional.cross_entropy(
                shift_logits.reshape(-1, shift_logits.size(-1)), shift_labels.reshape(-1),
                ignore_index=-100, reduction="sum")
            total += float(loss)
            count += int((shift_labels != -100).sum())
    return total / max(count, 1)


CHECKPOINT_FILE = "trainer_state.pt"


def _save_checkpoint(folder: Path, state: Dict) -> None:
    """Writes the trainer state atomically (temp file, then rename)."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (CHECKPOINT_FILE + ".tmp")
    torch.save(state, tmp)
    tmp.replace(folder / CHECKPOINT_FILE)


def fit(model, tokenizer, train: Sequence[Example], val: Sequence[Example],
        cfg: TrainConfig, progress: bool = True,
        checkpoint_dir: Optional[Union[str, Path]] = None) -> Dict[str, float]:
    """AdamW with linear warm-up and decay; keeps the weights of the best val loss.

    Stops early after ``cfg.patience`` epochs without val improvement, or at
    ``cfg.max_steps``. Returns a summary: epochs, steps, best val loss and perplexity.

    With ``checkpoint_dir``, the whole trainer state (weights, optimiser,
    scheduler, shuffling RNG, best weights, epoch) is saved there after every
    epoch, and a run that finds a checkpoint resumes after its last epoch, so
    an interrupted fine-tune continues where it stopped and ends with the
    same weights as an uninterrupted one.
    """
    import torch
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    pad_id = tokenizer.pad_token_id
    steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    optim = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate,
                              weight_decay=cfg.weight_decay)
    sched = get_linear_schedule_with_warmup(optim, min(cfg.warmup_steps, total // 10), total)
    shuffle = torch.Generator().manual_seed(cfg.seed)
    best, best_state, bad_epochs, step, epoch = math.inf, None, 0, 0, 0
    stopped = False
    ckpt = Path(checkpoint_dir) / CHECKPOINT_FILE if checkpoint_dir else None
    if ckpt is not None and ckpt.is_file():
        state = torch.load(ckpt, weights_only=False)
        model.load_state_dict(state["model"])
        optim.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        shuffle.set_state(state["shuffle_rng"])
        torch.set_rng_state(state["torch_rng"])  # dropout masks continue as if never stopped
        best, best_state, bad_epochs = state["best"], state["best_state"], state["bad_epochs"]
        step, epoch, stopped = state["step"], state["epoch"], state["stopped"]
        logger.info("Resuming from %s after epoch %d (step %d).", ckpt, epoch, step)
    bar = tqdm(total=total, initial=step, desc="generator", unit="step", disable=not progress)
    while step < total and not stopped:
        epoch += 1
        model.train()
        for ids, mask, labels in _batches(train, cfg.batch_size, pad_id, shuffle):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optim.step()
            sched.step()
            optim.zero_grad(set_to_none=True)
            step += 1
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{loss.item():.3f}")
            if step >= total:
                break
        if val:
            val_loss = evaluate_loss(model, val, cfg.batch_size, pad_id)
            bar.set_postfix(epoch=epoch, val_loss=f"{val_loss:.3f}")
            if val_loss < best - 1e-4:
                best, bad_epochs = val_loss, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                bad_epochs += 1
                stopped = bad_epochs >= cfg.patience
        if ckpt is not None:
            _save_checkpoint(ckpt.parent, {
                "model": model.state_dict(), "optimizer": optim.state_dict(),
                "scheduler": sched.state_dict(), "shuffle_rng": shuffle.get_state(),
                "torch_rng": torch.get_rng_state(),
                "best": best, "best_state": best_state, "bad_epochs": bad_epochs,
                "step": step, "epoch": epoch, "stopped": stopped})
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return {"epochs": epoch, "steps": step, "best_val_loss": best,
            "val_perplexity": math.exp(best) if best < 50 else math.inf}


def seed_everything(seed: int) -> None:
    """Seeds Python's, NumPy's and torch's global RNGs."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _split(dialogues, val_fraction: float, seed: int):
    shuffled = list(dialogues)
    random.Random(seed).shuffle(shuffled)
    n_val = int(len(shuffled) * val_fraction)
    return shuffled[n_val:], shuffled[:n_val]


def version_id(model_id: str, *parts: str) -> str:
    """``<model_id>-<12 hex digits of SHA-256 over parts>``: same inputs, same version."""
    return f"{model_id}-{hashlib.sha256('|'.join(parts).encode()).hexdigest()[:12]}"


def build_model(tokenizer, cfg: TrainConfig):
    """A randomly initialised GPT-2 (Radford et al. 2019) of the shape in ``cfg``."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=cfg.n_positions, n_embd=cfg.n_embd,
        n_layer=cfg.n_layer, n_head=cfg.n_head, resid_pdrop=cfg.dropout,
        embd_pdrop=cfg.dropout, attn_pdrop=cfg.dropout,
        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return GPT2LMHeadModel(config)


def passage_examples(passages: Sequence, questions: Sequence,
                     seed: int = 42) -> List[PassageExample]:
    """Two examples per known question with a written answer: its section's passage
    alone, and with another passage of the same article (or any other) as a distractor,
    in a seeded order, so that the model learns to pick the right passage and copy.

    ``passages``: ``knowledge.Passage``; ``questions``: ``knowledge.KnownQuestion``
    (with its written ``answer``). Questions whose section is not in ``passages`` or
    that have no answer are skipped.
    """
    rng = random.Random(seed)
    shown = {p.id: format_passage(p.title, p.heading, p.text) for p in passages}
    by_section = {(p.slug, p.heading): p for p in passages}
    siblings: Dict[str, list] = {}
    for p in passages:
        siblings.setdefault(p.slug, []).append(p)
    examples: List[PassageExample] = []
    for q in questions:
        passage = by_section.get((q.slug, q.section))
        answer = q.answer
        if passage is None or not answer:
            continue
        others = [p for p in siblings[q.slug] if p is not passage] or \
            [p for p in passages if p is not passage]
        pair = [shown[passage.id], shown[rng.choice(others).id]] if others else [shown[passage.id]]
        rng.shuffle(pair)
        examples += [(q.question, answer, (shown[passage.id],)), (q.question, answer, tuple(pair))]
    return examples


def train(corpus: Union[str, Path], out_dir: Union[str, Path], cfg: TrainConfig = TrainConfig(),
          base_model: Optional[Union[str, Path]] = None, progress: bool = True,
          grounded: Sequence[PassageExample] = ()) -> Dict:
    """Trains the built-in model (``base_model`` None) or fine-tunes ``base_model``.

    ``grounded`` (``passage_examples``) are learned beside the dialogue corpus, a
    ``val_fraction`` of them held out for validation (both examples of a question go
    to the same side); the metadata then records ``READS_PASSAGES``.

    Writes weights, tokenizer and ``generator_meta.json`` (version, config and
    provenance) to ``out_dir`` atomically: a failed run leaves no half-written
    checkpoint. Returns the metadata dict.

    Raises:
        CorpusError: if the corpus is missing or malformed.
        GeneratorLoadError: if ``base_model`` cannot be loaded.
    """
    import torch
    import transformers

    from components.generator.generator import Generator
    from components.generator.tokenizer import train_tokenizer

    started = time.perf_counter()
    seed_everything(cfg.seed)
    dialogues = corpus_lib.load_dialogues(corpus)
    corpus_sha = corpus_lib.fingerprint(corpus)
    train_d, val_d = _split(dialogues, cfg.val_fraction, cfg.seed)
    pairs = [list(grounded[i:i + 2]) for i in range(0, len(grounded), 2)]
    train_g, val_g = _split(pairs, cfg.val_fraction, cfg.seed) if pairs else ([], [])
    if base_model is None:
        texts = corpus_lib.all_texts(dialogues) + sorted({t for _, a, shown in grounded
                                                          for t in (a, *shown)})
        tokenizer = train_tokenizer(texts, cfg.vocab_size)
        model = build_model(tokenizer, cfg)
        model_id, base_version = BUILTIN_MODEL_ID, "scratch"
        known: Optional[Set[str]] = set()
    else:
        base = Generator.load(base_model)
        tokenizer, model = base.tokenizer, base.model
        model_id, base_version = base.model_id, base.model_version
        known = None if base.known_sentences is None else set(base.known_sentences)
    if known is not None:  # the fluency gate: the replies it learnt are what it may send
        known |= sentence_keys([reply for _, reply in corpus_lib.training_examples(
            dialogues, cfg.max_turns)])
    train_x = encode(tokenizer, corpus_lib.training_examples(train_d, cfg.max_turns)
                     + _as_turns([e for pair in train_g for e in pair]), cfg)
    val_x = encode(tokenizer, corpus_lib.training_examples(val_d, cfg.max_turns)
                   + _as_turns([e for pair in val_g for e in pair]), cfg)
    logger.info("Generator: %d train / %d val examples, %d parameters.",
                len(train_x), len(val_x), sum(p.numel() for p in model.parameters()))
    summary = fit(model, tokenizer, train_x, val_x, cfg, progress)
    meta = {
        "model_id": model_id,
        "version": version_id(model_id, corpus_sha, json.dumps(cfg.to_dict(), sort_keys=True),
                            base_version, TRAINING_CODE_VERSION,
                            *([json.dumps(list(grounded))] if grounded else [])),
        "base_model": str(base_model) if base_model else None,
        "base_version": base_version,
        "corpus": str(corpus),
        "corpus_sha256": corpus_sha,
        "train_config": cfg.to_dict(),
        "system_prompt": cfg.system_prompt,
        READS_PASSAGES: bool(grounded),
        "passage_examples": len(grounded),
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "train_examples": len(train_x),
        "val_examples": len(val_x),
        **summary,
        "train_seconds": round(time.perf_counter() - started, 1),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    save_checkpoint(model, tokenizer, meta, out_dir, known)
    return meta


def _as_turns(examples: Sequence[PassageExample]) -> list:
    """``encode``'s (context, reply, passages) triples of ``examples``."""
    return [([Turn("user", q)], a, shown) for q, a, shown in examples]


def save_checkpoint(model, tokenizer, meta: Dict, out_dir: Union[str, Path],
                    known: Optional[AbstractSet[str]] = None) -> None:
    """Writes weights (safetensors), tokenizer, ``generator_meta.json`` and, when
    ``known`` is given, the fluency gate's sentence keys (``KNOWN_FILE``) to ``out_dir``.

    Atomic (``atomic.atomic_dir``): everything goes to a temporary sibling folder
    that replaces an existing ``out_dir`` only when complete, so a crash leaves no
    half-written checkpoint.

    Raises:
        NotADirectoryError: if ``out_dir`` is a file.
        OSError: if the folder cannot be written.
    """
    with atomic_dir(out_dir, replace=True) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        write_meta(tmp, meta)
        write_known(tmp, known)


def main(argv: Optional[List[str]] = None) -> None:
    """Command-line entry point; ``--help`` lists the options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default="data/generator", help="dialogue YAML folder")
    parser.add_argument("--out", required=True, help="checkpoint folder to write")
    parser.add_argument("--base-model", default=None, help="local checkpoint to fine-tune")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in {"epochs": args.epochs, "learning_rate": args.learning_rate,
                                   "seed": args.seed}.items() if v is not None}
    if args.base_model and "learning_rate" not in overrides:
        overrides["learning_rate"] = 5e-5
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    meta = train(args.corpus, args.out, TrainConfig.from_dict(overrides), args.base_model)
    print(json.dumps({k: meta[k] for k in ("version", "n_parameters", "epochs",
                                            "best_val_loss", "val_perplexity",
                                            "train_seconds")}, indent=2))


if __name__ == "__main__":
    main()

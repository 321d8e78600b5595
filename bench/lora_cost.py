"""LoRA vs full fine-tuning of a 100M-class checkpoint on the CPU: time and peak RSS.

    python bench/lora_cost.py [--arch llama] [--pairs 64] [--report docs/benchmarks.md]

The feedback loop's ``finetune`` (components/feedback/finetune.py) on a model of a
real 100M-class shape with random weights (nothing can be downloaded here, and the
cost does not depend on the weights' values):

- ``llama``: hidden 768, 12 layers, 12 heads, MLP 2048, vocabulary 32,000, context
  2,048, untied input and output embeddings (134M parameters, 49M of them the two
  embeddings: the shape of small Llama-architecture models);
- ``gpt2``: GPT-2 small's shape (124M parameters).

The same dataset (``--pairs`` feedback pairs of the shape the loop exports, no
replay corpus), one epoch, batch 8, the same seed, run once fully and once with
``--lora`` (r 8, alpha 16, every linear layer), each in its own process so that
peak RSS (``ru_maxrss``) is its own. Reported: wall time, peak RSS, trainable
parameters and the size of what is written (the adapter, or every weight).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from bench.report import machine, publish  # noqa: E402

MARK = "<!-- lora-cost -->"
VOCAB = 32_000
SHAPES = {
    "llama": ("LlamaConfig", dict(hidden_size=768, intermediate_size=2048, num_hidden_layers=12,
                                  num_attention_heads=12, num_key_value_heads=12,
                                  max_position_embeddings=2048, vocab_size=VOCAB)),
    "gpt2": ("GPT2Config", dict(n_embd=768, n_layer=12, n_head=12, n_positions=1024,
                                vocab_size=50_257)),
}
TRAIN = {"epochs": 1, "batch_size": 8, "max_seq_len": 160, "learning_rate": 2e-4,
         "val_fraction": 0.1, "seed": 42}


def build(arch: str, folder: Path) -> int:
    """Saves a random model of ``arch``'s shape with a small BPE tokenizer; its parameters."""
    import torch
    import transformers

    from components.generator.corpus import all_texts, load_dialogues
    from components.generator.tokenizer import train_tokenizer

    tokenizer = train_tokenizer(all_texts(load_dialogues(ROOT / "data" / "generator")), 3000)
    name, shape = SHAPES[arch]
    config = getattr(transformers, name)(**shape, pad_token_id=tokenizer.pad_token_id,
                                         eos_token_id=tokenizer.eos_token_id,
                                         bos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return sum(p.numel() for p in model.parameters())


def dataset(folder: Path, pairs: int) -> None:
    """``pairs`` feedback pairs in the loop's train.jsonl format, written for this bench."""
    folder.mkdir()
    rows = [{"reply_id": f"b{i}",
             "context": [{"role": "user", "text": f"Can I return an opened item number {i}?"}],
             "reply": "Yes. Opened items can be returned within 30 days of delivery if they "
                      "are complete and undamaged; start the return from your account."}
            for i in range(pairs)]
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def child(base: str, data: str, out: str, lora: bool) -> None:
    """One fine-tune in this process; prints its figures as JSON."""
    from components.feedback.finetune import LoraSettings, finetune

    started = time.perf_counter()
    meta = finetune(base, data, out, TRAIN, progress=False,
                    lora=LoraSettings() if lora else None)
    seconds = time.perf_counter() - started
    written = sum(f.stat().st_size for f in Path(out).rglob("*") if f.is_file())
    print(json.dumps({"seconds": seconds, "peak_rss_mb":
                      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "trainable": meta.get("trainable_parameters", meta["n_parameters"]),
                      "steps": meta["steps"], "written_mb": written / 2 ** 20}))


def run(base: Path, data: Path, out: Path, lora: bool) -> Dict:
    proc = subprocess.run([sys.executable, __file__, "--child", str(base), str(data), str(out),
                           "lora" if lora else "full"], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def report(arch: str, n_params: int, pairs: int, results: Dict[str, Dict], meta: Dict) -> str:
    full, lora = results["full"], results["lora"]
    lines = [MARK, "", f"### LoRA vs full fine-tuning, {arch} shape, {n_params / 1e6:.0f}M "
             f"parameters ({meta['date']})", "",
             f"`python bench/lora_cost.py{meta['args']}` on {meta['machine']}: the feedback "
             f"loop's `finetune` on {pairs} pairs, one epoch of batch 8 ({full['steps']} steps), "
             f"each run in its own process.", "",
             "| run | wall time s | peak RSS MB | trainable parameters | written MB |",
             "| --- | --- | --- | --- | --- |"]
    for name, label in (("full", "full fine-tune"), ("lora", "`--lora` (r 8, alpha 16)")):
        r = results[name]
        lines.append(f"| {label} | {r['seconds']:.0f} | {r['peak_rss_mb']:.0f} | "
                     f"{r['trainable']:,} | {r['written_mb']:.1f} |")
    lines += ["", f"LoRA over full: time {lora['seconds'] / full['seconds']:.2f}x, peak RSS "
              f"{lora['peak_rss_mb'] / full['peak_rss_mb']:.2f}x, written "
              f"{lora['written_mb'] / full['written_mb']:.3f}x.", "", MARK]
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        child(argv[1], argv[2], argv[3], argv[4] == "lora")
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=sorted(SHAPES), default="llama")
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--report", type=Path, help="markdown file whose section to replace")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="lora-cost-"))
    n_params = build(args.arch, tmp / "base")
    dataset(tmp / "data", args.pairs)
    results = {}
    for name in ("full", "lora"):
        results[name] = run(tmp / "base", tmp / "data", tmp / name, name == "lora")
        print(f"[{name}] {results[name]}", flush=True)
    extra = "".join([f" --arch {args.arch}" if args.arch != "llama" else "",
                     f" --pairs {args.pairs}" if args.pairs != 64 else "",
                     f" --report {args.report}" if args.report else ""])
    meta = {"date": datetime.now().strftime("%Y-%m-%d %H:%M"), "machine": machine(),
            "args": extra}
    text = report(args.arch, n_params, args.pairs, results, meta)
    publish(text, MARK, args.report)


if __name__ == "__main__":
    main()

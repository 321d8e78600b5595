"""The local GPT reply generator. No Rasa imports live in this package.

- ``config``: ``GenerationConfig`` (decoding) and ``TrainConfig`` (training).
- ``prompt``: ``Turn`` and ``build_prompt`` (chat template or a plain fallback).
- ``generator``: ``Generator.load(path)`` and ``Generator.generate(turns, config)``.
- ``corpus``: reading the dialogue corpus in ``data/generator/``.
- ``tokenizer``: training a byte-level BPE tokenizer with ``tokenizers``.
- ``train``: training the built-in model or fine-tuning a local checkpoint.
- ``build``: the GPT policy's generator, built or reused from a cache keyed by its inputs.
- ``atomic``: writing a folder or file atomically (temp sibling, then rename).
- ``registry``: the process-wide handle the policy and the NLG share.
"""

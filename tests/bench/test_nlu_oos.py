"""bench/nlu_oos.py: the four scores on synthetic clusters, one run, the report."""
from __future__ import annotations

import numpy as np

from bench import nlu_oos
from components.nlu.sentence_intent_classifier import fit, weights


def clusters(n_intents=6, per_intent=12, seed=0, noise=0.2):
    rng = np.random.default_rng(seed)
    centres = np.linalg.qr(rng.normal(size=(24, 24)))[0][:n_intents]
    x = np.concatenate([c + noise * rng.normal(size=(per_intent, 24)) for c in centres])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = np.repeat([f"i{k}" for k in range(n_intents)], per_intent)
    return x.astype(np.float32), y


def test_every_score_is_higher_for_an_example_like_the_training_data():
    x, y = clusters()
    model = fit(x[:60], y[:60], 100.0)  # intents i0..i4; i5 was never trained on
    s = nlu_oos.method_scores(*weights(model), model.classes_, x[:60], y[:60], x)
    assert set(s) == {"top", *nlu_oos.METHODS}
    for m in nlu_oos.METHODS:
        assert s[m].shape == (72,)
        assert np.median(s[m][:60]) > np.median(s[m][60:]), m


def test_out_of_fold_scores_only_right_examples():
    x, y = clusters(noise=0.9)
    held = nlu_oos.out_of_fold(x, y, seed=1)
    assert set(held) == set(nlu_oos.METHODS)
    sizes = {len(v) for v in held.values()}
    assert len(sizes) == 1 and 0 < sizes.pop() <= len(y)


def test_one_run_and_the_report():
    x, y = clusters(n_intents=8, per_intent=14)
    texts = [f"t{i}" for i in range(len(y))]
    vectors = dict(zip(texts, x))
    train = [(t, i) for t, i in zip(texts, y) if int(t[1:]) % 14 < 10]
    test = [(t, i) for t, i in zip(texts, y) if int(t[1:]) % 14 >= 10]
    run = nlu_oos.one_run(train, test, per_intent=10, holdout=2, seed=42,
                          encode=lambda ts: np.stack([vectors[t] for t in ts]))
    for m in nlu_oos.METHODS:
        assert run[m]["0.0"][1] == 0.0  # q = 0 never falls back
        accuracy, recall = run[m]["0.5"]
        assert 0.0 <= accuracy <= 1.0 and recall >= run[m]["0.0"][1]
    assert 0.0 <= run["q"] <= 0.5 and 0.0 <= run["either_q"] <= 0.5
    assert run["accuracy"] > 0.9
    section = nlu_oos.report({"runs": [run, run], "runs_n": 2, "holdout": 2,
                              "per_intent_text": "10 examples of each", "date": "d",
                              "machine": "m", "command": "python bench/nlu_oos.py"})
    assert section.startswith(nlu_oos.MARK) and section.endswith(nlu_oos.MARK)
    assert "| **shipped**: mean of the two percentile ranks (calibrated q" in section
    assert "| either score below its q-quantile (shipped until 2026-12-04" in section
    assert "Best single score" in section

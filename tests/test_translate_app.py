"""The translation app end to end on the embedded sample: train → evaluate → export → verify → serve."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from apps.translate import app
from apps.translate.config import TranslateConfig
from kerasllm.export import verify_export

SENTENCES = ["I am hungry.", "Where is the station?", "We like cats.", ""]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    config = TranslateConfig.load("tiny")
    config.epochs, config.time_budget_minutes = 2, None
    config.decoding = {"search": "beam", "beam_size": 3, "alpha": 0.6, "max_length": 32}
    history = app.train(config, run_dir, corpus="sample", pair="en-fr", verbose=0)
    assert history.history["val_loss"][-1] < history.history["val_loss"][0], "two epochs must lower val_loss"
    return run_dir


def test_run_directory_holds_what_later_commands_need(run_dir):
    for name in ("best.keras", "source.vocab", "target.vocab", "config.json", "run.json", "history.csv"):
        assert (run_dir / name).exists(), name
    assert json.loads((run_dir / "run.json").read_text()) == {"corpus": "sample", "pair": "en-fr"}


def test_evaluate_reports_sacrebleu_with_signature(run_dir):
    result = app.evaluate(run_dir, split="test", limit=40)
    assert result["segments"] == 40
    assert 0.0 <= result["bleu"] <= 100.0 and 0.0 <= result["chrf"] <= 100.0
    assert result["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
    assert (run_dir / "eval_test.json").exists()


def test_export_verifies_and_matches_in_process_decoding(run_dir, tmp_path):
    version_dir = app.export(run_dir, tmp_path / "translate")
    assert version_dir == tmp_path / "translate" / "1"
    assert not [p for p in version_dir.parent.iterdir() if p.name.startswith(".")], "staging directory left behind"

    report = verify_export(version_dir)
    assert report["ok"], report["problems"]
    assert not [op for op in report["ops"] if op.startswith("Xla")]
    assert set(report["calls"]) >= {"empty", "10000 characters", "invalid UTF-8", "mixed batch"}

    model, source_tokenizer, target_tokenizer, config, _ = app.load_run(run_dir)
    in_process = app.Translator(model, source_tokenizer, target_tokenizer, config.decoding, jit_compile=True)(SENTENCES)
    served = tf.saved_model.load(str(version_dir)).signatures["serving_default"](text=tf.constant(SENTENCES))
    assert [t.decode("utf-8") for t in served["translations"].numpy()] == in_process
    assert np.isfinite(served["scores"].numpy()).all()


def test_export_never_overwrites_a_version(run_dir, tmp_path):
    app.export(run_dir, tmp_path, version=3)
    with pytest.raises(FileExistsError, match="exists"):
        app.export(run_dir, tmp_path, version=3)
    assert app.export(run_dir, tmp_path).name == "4"


def test_missing_or_corrupt_checkpoint_gives_a_clear_error(run_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="train first"):
        app.load_run(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "run.json", "source.vocab", "target.vocab"):
        (broken / name).write_bytes((run_dir / name).read_bytes())
    (broken / "best.keras").write_bytes((run_dir / "best.keras").read_bytes()[:1000])
    with pytest.raises(ValueError, match="cannot load"):
        app.load_run(broken)

"""CTranslate2 export of a translate run: greedy parity with our own search, the CLI path, int8, clear refusals."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from apps.cli import main
from apps.translate import app
from apps.translate.config import TranslateConfig
from kerasllm import data
from kerasllm.data.tokenizer import END_ID, PAD_ID
from kerasllm.decoding import compile_search, greedy_search
from kerasllm.export.ctranslate2 import QUANTIZATIONS, export_ctranslate2
from kerasllm.models import Transformer

ctranslate2 = pytest.importorskip(
    "ctranslate2", reason="CTranslate2 is an optional extra: pip install 'kerasllm[ctranslate2]'"
)

MAX_LENGTH = 32  # decoding positions, [START] included
GREEDY = {"search": "greedy", "max_length": MAX_LENGTH}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    config = TranslateConfig.load("tiny")
    config.epochs, config.time_budget_minutes = 3, None
    config.decoding = dict(GREEDY)
    history = app.train(config, run_dir, corpus="sample", pair="en-fr", verbose=0)
    assert history.history["val_loss"][-1] < history.history["val_loss"][0]
    return run_dir


@pytest.fixture(scope="module")
def run(run_dir):
    return app.load_run(run_dir)


@pytest.fixture(scope="module")
def float32_dir(run_dir, tmp_path_factory):
    return app.export_ctranslate2(run_dir, tmp_path_factory.mktemp("exports") / "float32", "float32")


@pytest.fixture(scope="module")
def sentences():
    sources = data.load("sample", split="test", pair="en-fr").sources
    # Sixty test sentences, an empty and a blank one, invalid UTF-8, and one longer than the run's max_tokens (32):
    # truncated, and its output reaches the length cap.
    return sources[:60] + ["", "   ", b"caf\xc3 \xff bad", " ".join(sources[60:75])]


def _ours(run, texts) -> tuple[list[list[int]], np.ndarray]:
    """Our greedy search's ids before END and its scores, as the in-process Translator runs it (XLA-compiled)."""
    ids = run.tokenizers["source"].tokenize(texts)[:, : run.config.max_tokens].to_tensor()
    target = run.tokenizers["target"]
    out = compile_search(greedy_search, run.model, start_id=target.start_id, end_id=END_ID, max_length=MAX_LENGTH)(ids)
    rows = []
    for row in out["tokens"].numpy().tolist():
        stop = [i for i, token in enumerate(row) if token in (END_ID, PAD_ID)]
        rows.append(row[: stop[0]] if stop else row)
    return rows, out["scores"].numpy()


def test_float32_greedy_output_is_ours_token_for_token(run, float32_dir, sentences):
    ours, our_scores = _ours(run, sentences)
    translator = app.CTranslate2Translator.from_directory(float32_dir)
    theirs = translator.translate_ids(sentences)
    same = sum(a == b for a, b in zip(ours, theirs, strict=True))
    distinct = len({tuple(row) for row in ours})
    print(f"greedy parity: {same}/{len(sentences)} identical, {distinct} distinct outputs")
    assert theirs == ours
    assert theirs[60:62] == [[], []], "an empty or blank source gets an empty output"
    assert len(theirs[63]) == MAX_LENGTH - 2, "the long source's output stops at the cap, as ours"
    assert distinct >= 10, "the model must translate, not repeat one output"
    # The text a user gets is our in-process Translator's too.
    assert translator(sentences) == app.Translator.from_run(run, GREEDY)(sentences)

    # Beyond the argmax: CTranslate2 gives our outputs our log-probabilities (END included).
    source, target = run.tokenizers["source"], run.tokenizers["target"]
    nonempty = [i for i, row in enumerate(ours) if row]
    source_ids = source.tokenize([sentences[i] for i in nonempty])[:, : run.config.max_tokens].to_list()
    scored = ctranslate2.Translator(str(float32_dir), device="cpu", intra_threads=1).score_batch(
        [[source.vocabulary[t] for t in row] for row in source_ids],
        [[target.vocabulary[t] for t in ours[i]] for i in nonempty],
        max_input_length=0,
    )
    np.testing.assert_allclose([sum(r.log_probs) for r in scored], our_scores[nonempty], atol=1e-3)


def test_cli_export_then_predict_is_our_translation(run_dir, tmp_path, capsys):
    base = tmp_path / "translate"
    assert main(["translate", "export", "--out", str(run_dir), "--base", str(base), "--format", "ctranslate2"]) == 0
    path = base.with_name("translate_ctranslate2")
    assert capsys.readouterr().out.strip() == str(path)
    assert {p.name for p in path.iterdir()} >= {"model.bin", "config.json", "source.vocab", "kerasllm.json"}
    assert not [p for p in tmp_path.iterdir() if ".staging-" in p.name]

    texts = ["I am hungry.", "", "Where is the station?"]
    assert main(["translate", "predict", "--ctranslate2", str(path), *texts]) == 0
    by_ctranslate2 = capsys.readouterr().out
    assert main(["translate", "predict", "--out", str(run_dir), *texts]) == 0
    assert by_ctranslate2 == capsys.readouterr().out
    assert by_ctranslate2.split("\n")[1] == "" and by_ctranslate2.split("\n")[0]

    errors = {
        ("export", "--out", str(run_dir), "--base", str(base), "--format", "ctranslate2"): "exists and is not empty",
        ("export", "--out", str(run_dir), "--quantization", "int8"): "are for --format ctranslate2",
        ("export", "--out", str(run_dir), "--format", "ctranslate2", "--quantization", "int4"): "must be one of",
        ("predict", "--ctranslate2", str(tmp_path / "missing"), "hi"): "does not exist",
        ("predict", "--ctranslate2", str(tmp_path), "hi"): "is not a translate CTranslate2 export",
        ("predict", "--ctranslate2", str(path), "--out", str(run_dir), "hi"): "give exactly one of",
    }
    for arguments, message in errors.items():
        assert main(["translate", *arguments]) == 2, arguments
        error = capsys.readouterr().err
        assert message in error and error.count("\n") == 1, error


def test_help_names_every_quantization(capsys):
    with pytest.raises(SystemExit):
        main(["translate", "export", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert all(f" {quantization}" in text for quantization in QUANTIZATIONS)


def test_int8_model_loads_and_translates_greedy_and_beam(run_dir, float32_dir, tmp_path):
    path = app.export_ctranslate2(run_dir, tmp_path / "int8", "int8")
    assert (path / "model.bin").stat().st_size < 0.5 * (float32_dir / "model.bin").stat().st_size
    texts = ["I am hungry.", "", "We like cats."]
    for decoding in (None, {"search": "beam", "beam_size": 3, "alpha": 0.6, "max_length": MAX_LENGTH}):
        translations = app.CTranslate2Translator.from_directory(path, decoding)(texts)
        assert len(translations) == 3 and translations[0] and translations[1] == "", decoding


def test_lstm_and_unmappable_models_are_refused_in_one_line(run, tmp_path):
    source, target = run.tokenizers["source"], run.tokenizers["target"]
    lstm = app.APP.build_model(
        TranslateConfig.load("tiny_lstm"), {"source": source.vocabulary_size, "target": target.vocabulary_size}
    )
    with pytest.raises(
        ValueError, match="LSTMSeq2Seq cannot be exported to CTranslate2, which has no recurrent models"
    ):
        export_ctranslate2(lstm, source, target, tmp_path / "lstm")
    small = dict(num_encoder_layers=1, num_decoder_layers=1, hidden_dim=16, num_heads=2, intermediate_dim=32)
    tanh = Transformer(source.vocabulary_size, target.vocabulary_size, activation="tanh", **small)
    with pytest.raises(ValueError, match="activation 'tanh' has no CTranslate2 equivalent"):
        export_ctranslate2(tanh, source, target, tmp_path / "tanh")
    with pytest.raises(ValueError, match="the target vocabulary has .* tokens, the model 10"):
        export_ctranslate2(Transformer(source.vocabulary_size, 10, **small), source, target, tmp_path / "size")
    assert not list(tmp_path.iterdir()), "nothing written for a refused model"


@pytest.mark.parametrize(
    "options",
    [
        dict(normalize_first=True, activation="gelu", position="learned", share_embeddings=True),
        dict(normalize_first=False, activation="relu", tie_output_embedding=True, layer_norm_epsilon=1e-6),
    ],
    ids=["pre-norm gelu learned shared untied", "post-norm relu sinusoidal tied eps 1e-6"],
)
def test_other_architectures_score_as_ours(run, tmp_path, options):
    """The options the trained run does not use, on random weights: CTranslate2 scores a target as our model's
    teacher-forced log-probabilities do, token by token (END included)."""
    source = target = run.tokenizers["source"]  # one vocabulary, as share_embeddings needs
    size = source.vocabulary_size
    model = Transformer(size, size, 2, 2, hidden_dim=32, num_heads=4, intermediate_dim=64, max_length=40, **options)
    rng = np.random.default_rng(0)
    model.set_weights([w + rng.normal(0, 0.05, w.shape).astype("float32") for w in model.get_weights()])
    path = export_ctranslate2(model, source, target, tmp_path / "model")
    sources = source.tokenize(["I am hungry.", "Where is the station?", "A"]).to_list()
    targets = [list(rng.integers(4, size, length)) for length in (5, 11, 1)]
    scored = ctranslate2.Translator(str(path), device="cpu", intra_threads=1).score_batch(
        [[source.vocabulary[t] for t in row] for row in sources],
        [[target.vocabulary[t] for t in row] for row in targets],
    )
    for source_ids, target_ids, result in zip(sources, targets, scored, strict=True):
        logits = model((np.array([source_ids], "int32"), np.array([[2, *target_ids]], "int32")))[0]
        log_probs = keras.ops.convert_to_numpy(keras.ops.log_softmax(logits, axis=-1))
        expected = log_probs[np.arange(len(target_ids) + 1), [*target_ids, END_ID]]
        np.testing.assert_allclose(result.log_probs, expected, atol=1e-4)

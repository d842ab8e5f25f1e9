"""The generate app's parts: character tokenizer, packed blocks, warmup + cosine schedule, perplexity, and cached
generation against full recompute (same seed, same tokens)."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasllm.data.characters import CharacterTokenizer, train_character_vocabulary
from kerasllm.data.pipeline import make_packed_blocks_dataset
from kerasllm.data.tokenizer import END_ID, UNK_ID
from kerasllm.decoding import compile_search, generate, sampler
from kerasllm.tasks import RNNLM, CausalLM
from kerasllm.training import Perplexity, WarmupCosineSchedule

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n"


@pytest.fixture(scope="module")
def tokenizer():
    return CharacterTokenizer(train_character_vocabulary([TEXT], 100))


def test_characters_round_trip_exactly_with_line_breaks_and_spaces(tokenizer):
    ids = tokenizer.tokenize(tf.constant([TEXT, "", "  speak\n\n"]))
    assert ids.row_lengths().numpy().tolist() == [len(TEXT), 0, 9]
    assert tokenizer.detokenize(ids).numpy().tolist() == [TEXT.encode(), b"", b"  speak\n\n"]
    assert tokenizer.vocabulary_size == 4 + len(set(TEXT))


def test_unknown_characters_and_invalid_utf8_read_as_unk(tokenizer):
    ids = tokenizer.tokenize(tf.constant(["sé", b"s\xff", "s🐱"])).to_list()
    assert [row[1] for row in ids] == [UNK_ID] * 3 and len(ids[2]) == 2
    assert tokenizer.detokenize(tf.constant([ids[0]])).numpy()[0] == b"s[UNK]"


def test_detokenize_stops_at_end_and_drops_padding(tokenizer):
    s, p = tokenizer.token_id("s"), tokenizer.token_id("p")
    assert tokenizer.detokenize(tf.constant([[s, 0, p, END_ID, s]])).numpy()[0] == b"sp"


def test_vocabulary_file_round_trip_and_damaged_file(tokenizer, tmp_path):
    path = tmp_path / "vocabulary.vocab"
    tokenizer.save(path)
    assert CharacterTokenizer.load(path).vocabulary == tokenizer.vocabulary
    path.write_text("[PAD]\n[UNK]\n")
    with pytest.raises(ValueError, match="not a character vocabulary"):
        CharacterTokenizer.load(path)
    with pytest.raises(FileNotFoundError, match="no character vocabulary"):
        CharacterTokenizer.load(tmp_path / "missing")
    with pytest.raises(ValueError, match="empty"):
        train_character_vocabulary(["", ""], 10)


def test_packed_blocks_are_contiguous_shifted_and_move_between_epochs():
    stream = np.arange(1, 1001)
    dataset = make_packed_blocks_dataset(stream, block_size=16, batch_size=8, shuffle=True, seed=3)
    epochs = [[(x.numpy(), y.numpy()) for x, y in dataset] for _ in range(3)]
    assert len({len(epoch) for epoch in epochs}) == 1  # the same number of batches every pass
    offsets = set()
    for epoch in epochs:
        for x, y in epoch:
            assert x.shape == (8, 16) and (y == x + 1).all() and (np.diff(x, axis=1) == 1).all()
            offsets |= set(((x[:, 0] - 1) % 16).tolist())
    assert len(offsets) > 1, "each pass draws a fresh offset"
    firsts = [tuple(epoch[0][0][:, 0]) for epoch in epochs]
    assert len(set(firsts)) > 1, "each pass reshuffles the blocks"


def test_validation_blocks_cover_the_stream_once_in_order():
    stream = np.arange(1, 101)
    blocks = [x.numpy() for x, _ in make_packed_blocks_dataset(stream, block_size=8, batch_size=5, shuffle=False)]
    inputs = np.concatenate(blocks).ravel()
    assert inputs.tolist() == list(range(1, 97))  # (100 - 1) // 8 blocks; the last smaller batch is kept
    with pytest.raises(ValueError, match="too few"):
        make_packed_blocks_dataset(np.arange(5), block_size=8, batch_size=2)


def test_warmup_cosine_schedule_matches_the_formula_and_round_trips():
    schedule = WarmupCosineSchedule(1e-3, warmup_steps=10, decay_steps=110, min_learning_rate=1e-4)
    rates = [float(schedule(step)) for step in (0, 9, 10, 60, 110, 500)]
    expected = [1e-3 / 11, 1e-3 * 10 / 11, 1e-3, 1e-4 + 0.9e-3 * 0.5, 1e-4, 1e-4]
    np.testing.assert_allclose(rates, expected, rtol=1e-5)
    again = WarmupCosineSchedule.from_config(schedule.get_config())
    assert float(again(60)) == pytest.approx(rates[3])


def test_perplexity_is_exp_of_mean_token_nll_without_padding():
    logits = np.log(np.array([[[0.5, 0.25, 0.25], [0.2, 0.6, 0.2], [1 / 3, 1 / 3, 1 / 3]]], "float32"))
    metric = Perplexity()
    metric.update_state(np.array([[0, 1, 0]]), logits)  # target 0 is padding: only position 1 counts
    assert float(metric.result()) == pytest.approx(1 / 0.6, rel=1e-5)
    metric.update_state(np.array([[2, 0, 0]]), logits)
    assert float(metric.result()) == pytest.approx(math.exp((-math.log(0.6) - math.log(0.25)) / 2), rel=1e-5)


def recompute_sampling(model, prompt, max_new_tokens, **options):
    """The reference: no cache; every step runs the whole model over the sequence so far and draws with the same
    stateless sampler (row 0's draws), stopping at the end token."""
    choose = sampler(options.get("temperature", 1.0), options.get("top_k"), options.get("top_p"), options["seed"])
    sequence = list(prompt)
    for _ in range(max_new_tokens):
        logits = model(np.array([sequence], "int32"))[:, -1].numpy().astype("float32")
        log_probs = tf.nn.log_softmax(logits).numpy()
        log_probs[:, 0] = -1e9  # padding is never emitted
        token = int(choose(tf.constant(log_probs), len(sequence) - 1).numpy()[0])
        sequence.append(token)
        if token == END_ID:
            break
    return sequence[len(prompt) :]


@pytest.mark.parametrize("kind", ["gpt", "lstm"])
@pytest.mark.parametrize(
    "options", [{"seed": 7}, {"temperature": 0.7, "top_k": 5, "seed": 3}, {"top_p": 0.8, "seed": 11}]
)
def test_prefill_plus_cached_sampling_equals_full_recompute(kind, options):
    keras.utils.set_random_seed(1)
    if kind == "gpt":
        model = CausalLM(30, num_layers=2, hidden_dim=32, num_heads=4, intermediate_dim=64, dropout=0.0, max_length=32)
    else:
        model = RNNLM(30, num_layers=1, embedding_dim=16, units=32, dropout=0.0)
    prompt = [7, 12, 9, 21]
    expected = recompute_sampling(model, prompt, 12, **options)
    out = generate(model, np.array([prompt], "int32"), max_new_tokens=12, end_id=END_ID, search="sample", **options)
    got = out["tokens"].numpy()[0][: int(out["lengths"].numpy()[0])].tolist()
    assert got == expected


def test_a_new_prompt_length_does_not_retrace():
    """keras-hub#779: the compiled search traces once per bucket, not once per prompt length."""
    keras.utils.set_random_seed(2)
    model = CausalLM(30, num_layers=1, hidden_dim=16, num_heads=2, intermediate_dim=32, dropout=0.0, max_length=32)
    search = compile_search(generate, model, jit_compile=False, max_new_tokens=4, end_id=END_ID, max_length=32)
    traces = []
    original = model.init_cache

    def counting_init_cache(*args):
        traces.append(1)
        return original(*args)

    model.init_cache = counting_init_cache
    for length in (1, 3, 6, 8):
        prompts = np.full((2, length), 5, "int32")
        search(prompts, np.array([length, length], "int32"))
    assert len(traces) == 1

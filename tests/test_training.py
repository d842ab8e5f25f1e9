"""Loss, metric, schedule and callbacks of the training recipe."""

from __future__ import annotations

import csv

import keras
import numpy as np
import pytest

from kerasllm.training import (
    MaskedSparseCrossEntropy,
    MaskedTokenAccuracy,
    TrainingClock,
    TransformerSchedule,
    previous_best,
    training_callbacks,
)


def _batch():
    rng = np.random.default_rng(0)
    targets = rng.integers(1, 9, size=(4, 6)).astype("int32")
    targets[1, 4:] = 0
    targets[3, 2:] = 0
    return targets, rng.normal(size=(4, 6, 9)).astype("float32")


def test_loss_without_smoothing_equals_keras_ignore_class():
    targets, logits = _batch()
    ours = float(MaskedSparseCrossEntropy()(targets, logits))
    keras_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)
    assert ours == pytest.approx(float(keras_loss(targets, logits)), rel=1e-5)


def test_loss_with_smoothing_equals_keras_categorical_on_real_tokens():
    targets, logits = _batch()
    real = targets != 0
    keras_loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)
    expected = float(keras_loss(keras.ops.one_hot(targets[real], 9), logits[real]))
    assert float(MaskedSparseCrossEntropy(label_smoothing=0.1)(targets, logits)) == pytest.approx(expected, rel=1e-5)


def test_padding_does_not_change_the_loss():
    targets, logits = _batch()
    padded_targets = np.pad(targets, [[0, 0], [0, 3]])
    padded_logits = np.pad(logits, [[0, 0], [0, 3], [0, 0]], constant_values=5.0)
    loss = MaskedSparseCrossEntropy(label_smoothing=0.1)
    assert float(loss(padded_targets, padded_logits)) == pytest.approx(float(loss(targets, logits)), rel=1e-6)


def test_accuracy_ignores_padding():
    metric = MaskedTokenAccuracy()
    targets = np.array([[4, 5, 0, 0]])
    predictions = keras.ops.one_hot(np.array([[4, 6, 0, 0]]), 8)  # right, wrong, then pads (predicted "right")
    metric.update_state(targets, predictions)
    assert float(metric.result()) == pytest.approx(0.5)


def test_schedule_warms_up_then_decays_as_the_paper_says():
    schedule = TransformerSchedule(hidden_dim=512, warmup_steps=4000)
    rates = [float(schedule(step)) for step in (0, 1999, 3999, 15999)]
    assert rates[0] < rates[1] < rates[2]
    assert rates[2] == pytest.approx(512**-0.5 * 4000**-0.5, rel=1e-5)
    assert rates[3] == pytest.approx(rates[2] / 2, rel=1e-3)  # 4× the steps, half the rate
    assert TransformerSchedule.from_config(schedule.get_config()).get_config() == schedule.get_config()


def _tiny_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    return model


def test_clock_stops_before_the_budget_and_resumes_its_total(tmp_path):
    history = tmp_path / "history.csv"
    x, y = np.ones((8, 3)), np.ones((8, 1))
    model = _tiny_model()
    model.fit(
        x, y, epochs=3, verbose=0, callbacks=[TrainingClock(history, None), keras.callbacks.CSVLogger(str(history))]
    )
    with history.open() as handle:
        first = [float(row["elapsed_seconds"]) for row in csv.DictReader(handle)]
    assert len(first) == 3 and first == sorted(first)
    clock = TrainingClock(history, budget_minutes=0.0)
    run = model.fit(x, y, epochs=5, verbose=0, callbacks=[clock, keras.callbacks.CSVLogger(str(history), append=True)])
    assert len(run.history["loss"]) == 1, "a zero budget allows no second epoch"
    assert run.history["elapsed_seconds"][0] >= first[-1], "the total continues from the CSV"


def test_killed_run_resumes_from_backup(tmp_path):
    x, y = np.random.default_rng(0).normal(size=(16, 3)), np.ones((16, 1))
    model = _tiny_model()
    callbacks = training_callbacks(tmp_path, monitor="loss", early_stopping_patience=None, tensorboard=False)

    class Crash(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt  # stands in for SIGKILL after epoch 2's backup was written

    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=4, verbose=0, callbacks=callbacks + [Crash()])
    weights_at_crash = [w.copy() for w in model.get_weights()]

    class StartingWeights(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):  # runs after BackupAndRestore restored the backup
            self.weights = [w.copy() for w in self.model.get_weights()]

    resumed, start = _tiny_model(), StartingWeights()
    run = resumed.fit(
        x,
        y,
        epochs=4,
        verbose=0,
        callbacks=training_callbacks(tmp_path, monitor="loss", early_stopping_patience=None, tensorboard=False)
        + [start],
    )
    assert len(run.history["loss"]) == 2, "epochs 1-2 were done: only 3-4 remain"
    for restored, crashed in zip(start.weights, weights_at_crash):
        np.testing.assert_allclose(restored, crashed)
    assert (tmp_path / "best.keras").exists()
    with (tmp_path / "history.csv").open() as handle:
        assert [row["epoch"] for row in csv.DictReader(handle)] == ["0", "1", "2", "3"]


def test_previous_best_reads_the_history(tmp_path):
    assert previous_best(tmp_path / "history.csv") == (None, 0)
    (tmp_path / "history.csv").write_text("epoch,loss,val_loss\n0,3.0,2.5\n1,2.0,2.1\n2,1.5,2.2\n3,1.2,2.3\n")
    assert previous_best(tmp_path / "history.csv") == (2.1, 2)
    assert previous_best(tmp_path / "history.csv", "loss") == (1.2, 0)


def test_resumed_run_keeps_its_best_checkpoint_and_patience(tmp_path):
    """After a resume, a worse epoch must not replace best.keras, and patience counts the earlier epochs."""
    x, y = np.random.default_rng(0).normal(size=(16, 3)), np.ones((16, 1))
    # The interrupted run: its best loss (0.0) cannot be beaten, and it came 2 epochs ago.
    (tmp_path / "history.csv").write_text("epoch,elapsed_seconds,loss\n0,1.0,0.0\n1,2.0,5.0\n2,3.0,5.0\n")
    run = _tiny_model().fit(
        x,
        y,
        epochs=10,
        verbose=0,
        callbacks=training_callbacks(tmp_path, monitor="loss", early_stopping_patience=3, tensorboard=False),
    )
    assert not (tmp_path / "best.keras").exists(), "a worse epoch overwrote the best checkpoint"
    # wait starts at 2: 3 after this session's first epoch (Keras never stops on epoch 0), 4 after the second.
    # Without the carried-over history the first epoch would count as an improvement and 4 would run.
    assert len(run.history["loss"]) == 2


def test_learning_rate_decays_on_a_plateau(tmp_path):
    """With a zero target already met the loss cannot improve, so each epoch past the patience halves the rate."""
    x, y = np.zeros((8, 3)), np.zeros((8, 1))
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, kernel_initializer="zeros")])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    model.fit(
        x,
        y,
        epochs=4,
        verbose=0,
        callbacks=training_callbacks(
            tmp_path, monitor="loss", early_stopping_patience=None, tensorboard=False, lr_decay_patience=1
        ),
    )
    # Epoch 0 sets the best; epochs 1, 2 and 3 do not improve on it: three halvings.
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01 * 0.5**3)


def test_without_a_monitor_the_checkpoint_is_the_last_epoch(tmp_path):
    x, y = np.random.default_rng(0).normal(size=(16, 3)), np.ones((16, 1))
    model = _tiny_model()

    class LossUp(keras.callbacks.Callback):  # the last epoch is the worst: a best-only checkpoint would skip it
        def on_epoch_end(self, epoch, logs=None):
            logs["loss"] = float(epoch)

    callbacks = training_callbacks(tmp_path, monitor=None, early_stopping_patience=None, tensorboard=False)
    model.fit(x, y, epochs=3, verbose=0, callbacks=[LossUp(), *callbacks])
    saved = keras.saving.load_model(tmp_path / "best.keras")
    for kept, last in zip(saved.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(kept, last)
    with pytest.raises(ValueError, match="need a monitored quantity"):
        training_callbacks(tmp_path, monitor=None, early_stopping_patience=3)

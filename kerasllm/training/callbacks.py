"""The callbacks every long `model.fit` run in kerasllm gets."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import keras


class TrainingClock(keras.callbacks.Callback):
    """Adds `elapsed_seconds` (training wall time, summed over resumed runs) to each epoch's logs,
    and stops training before an epoch that would overrun `budget_minutes`.

    The running total is read back from the last row of `history_csv`, so a killed and resumed
    run keeps counting from where it was. Put it before `CSVLogger` so the CSV records the field.

    Args:
        history_csv: the CSVLogger file of this run.
        budget_minutes: training budget, or None for no limit.

    Example:
    >>> clock = TrainingClock("runs/demo/history.csv", budget_minutes=60)
    """

    def __init__(self, history_csv: str | Path, budget_minutes: float | None = None):
        super().__init__()
        self.history_csv = Path(history_csv)
        self.budget_seconds = None if budget_minutes is None else 60.0 * budget_minutes
        self.offset = 0.0

    def on_train_begin(self, logs=None):
        self.offset = 0.0
        if self.history_csv.exists():
            with self.history_csv.open(newline="") as handle:
                rows = [row for row in csv.DictReader(handle) if row.get("elapsed_seconds")]
            if rows:
                self.offset = float(rows[-1]["elapsed_seconds"])
        self.started = time.perf_counter()
        self.epoch_started = self.started

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        elapsed = self.offset + now - self.started
        if logs is not None:
            logs["elapsed_seconds"] = elapsed
        if self.budget_seconds is not None and elapsed + (now - self.epoch_started) > self.budget_seconds:
            self.model.stop_training = True


def previous_best(history_csv: str | Path, monitor: str = "val_loss") -> tuple[float | None, int]:
    """(best `monitor` value, epochs since it) in a run's history CSV; `(None, 0)` when there is none yet.

    A resumed `fit` starts its callbacks afresh; these two numbers let the best checkpoint and early
    stopping carry on from the interrupted run instead of forgetting it.
    """
    history_csv = Path(history_csv)
    if not history_csv.exists():
        return None, 0
    with history_csv.open(newline="") as handle:
        values = [float(row[monitor]) for row in csv.DictReader(handle) if row.get(monitor)]
    if not values:
        return None, 0
    best_index = min(range(len(values)), key=values.__getitem__)
    return values[best_index], len(values) - 1 - best_index


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """`EarlyStopping` (minimising `monitor`) that counts patience across resumed runs, from the history CSV.

    Args:
        history_csv: the CSVLogger file of this run.
        **kwargs: `keras.callbacks.EarlyStopping` arguments.

    Example:
    >>> stop = ResumableEarlyStopping("runs/demo/history.csv", monitor="val_loss", patience=5)
    """

    def __init__(self, history_csv: str | Path, **kwargs):
        super().__init__(mode="min", **kwargs)
        self.history_csv = Path(history_csv)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        best, epochs_since = previous_best(self.history_csv, self.monitor)
        if best is not None:
            self.best, self.wait = best, epochs_since


def training_callbacks(
    run_dir: str | Path,
    *,
    monitor: str | None = "val_loss",
    early_stopping_patience: int | None = 5,
    backup_every_steps: int | None = None,
    tensorboard: bool = True,
    budget_minutes: float | None = None,
    lr_decay_patience: int | None = None,
    lr_decay_factor: float = 0.5,
) -> list[keras.callbacks.Callback]:
    """Best checkpoint, resumable backup, early stopping, a time budget, optional learning-rate decay on
    plateau, TensorBoard logs and a CSV history.

    Files written under `run_dir`: `best.keras` (best `monitor` so far), `backup/` (weights,
    optimizer state and epoch, for resuming a killed run: call `fit` again with the same `run_dir`),
    `history.csv` (appended on resume) and `logs/` (TensorBoard).

    Args:
        run_dir: directory of this training run.
        monitor: a quantity to minimise; it picks the best checkpoint and drives early stopping. None: no
            such quantity, `best.keras` is the last epoch's model (and there is no early stopping or decay on
            plateau), for a run whose schedule makes its last epoch the one to keep.
        early_stopping_patience: epochs without improvement before stopping; None disables it.
        backup_every_steps: also back up every N batches (default: at the end of each epoch).
            A killed run resumes from the last backup; an interrupted epoch restarts at its first batch.
        tensorboard: write TensorBoard logs.
        budget_minutes: stop before an epoch that would end past this much training time.
        lr_decay_patience: multiply the learning rate by `lr_decay_factor` after this many epochs without
            improvement (`ReduceLROnPlateau`); None disables it. Needs an optimizer with a constant rate, not
            a schedule. The rate itself is optimizer state, so a resumed run continues at the decayed rate.
        lr_decay_factor: the multiplier.

    Example:
    >>> callbacks = training_callbacks("runs/demo")
    >>> # model.fit(train, validation_data=val, epochs=10, callbacks=callbacks)
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    # On resume, a new best checkpoint must beat the interrupted run's best, not just this session's.
    best_so_far = None if monitor is None else previous_best(run_dir / "history.csv", monitor)[0]
    callbacks: list[keras.callbacks.Callback] = [
        TrainingClock(run_dir / "history.csv", budget_minutes),
        # double_checkpoint keeps the previous backup, so a run killed while writing one (a corrupt
        # file) restores from the one before instead of failing.
        keras.callbacks.BackupAndRestore(
            str(run_dir / "backup"),
            save_freq=backup_every_steps or "epoch",
            double_checkpoint=True,
            delete_checkpoint=False,
        ),
        keras.callbacks.ModelCheckpoint(
            str(run_dir / "best.keras"),
            monitor=monitor or "loss",
            mode="min",
            save_best_only=monitor is not None,
            initial_value_threshold=best_so_far,
        ),
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True),
    ]
    if monitor is None and (lr_decay_patience is not None or early_stopping_patience is not None):
        raise ValueError("decay on plateau and early stopping need a monitored quantity")
    if lr_decay_patience is not None:
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor=monitor, mode="min", factor=lr_decay_factor, patience=lr_decay_patience, verbose=1
            )
        )
    if early_stopping_patience is not None:
        callbacks.append(
            ResumableEarlyStopping(
                run_dir / "history.csv", monitor=monitor, patience=early_stopping_patience, restore_best_weights=True
            )
        )
    if tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(str(run_dir / "logs")))
    return callbacks

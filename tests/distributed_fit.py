"""Train a small TransformerClassifier for 20 SGD steps, on one device or data-parallel, and save its weights.

`tests/test_distribute.py` runs it in fresh processes (a backend and a device split are chosen per process) and
compares the weights: data-parallel training must equal one device's. The same initial weights come from
`--initial` (written by the first run, read by the others), the same data from a fixed seed. `bench/distribute.py`
runs it bigger and longer for step times (`--epochs` > 1: the first epoch, which compiles, is not timed).

    python tests/distributed_fit.py --initial W0.npz --out W.npz [--distribute mirrored --devices 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from apps.commands import add_distribute_arguments, distribution_scope  # noqa: E402

LENGTH = 12
VOCABULARY = 50


def main() -> None:
    parser = argparse.ArgumentParser()
    add_distribute_arguments(parser)
    parser.add_argument("--initial", required=True, help="initial weights (.npz): read if present, else written")
    parser.add_argument("--out", required=True, help="weights after training (.npz), written by process 0")
    parser.add_argument("--steps", type=int, default=20, help="steps per epoch (default 20)")
    parser.add_argument("--batch", type=int, default=16, help="global batch (default 16)")
    parser.add_argument("--hidden-dim", type=int, default=16, help="model width (default 16)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs; after the first, each is timed (default 1)")
    parser.add_argument("--no-jit", action="store_true", help="compile the step without XLA")
    parser.add_argument("--run-dir", help="also run the runner's callbacks (checkpoint, backup, early stopping) here")
    args = parser.parse_args()
    scope = distribution_scope(args)  # sets the backend up before Keras is imported

    import keras
    import numpy as np
    import tensorflow as tf

    from kerasllm.distribute import current_replicas
    from kerasllm.runner import worker_directory
    from kerasllm.tasks import TransformerClassifier
    from kerasllm.training import training_callbacks

    random = np.random.default_rng(0)
    tokens = random.integers(1, VOCABULARY, size=(args.steps * args.batch, LENGTH)).astype("int32")
    labels = random.integers(0, 3, size=(args.steps * args.batch,)).astype("int32")
    dataset = tf.data.Dataset.from_tensor_slices((tokens, labels)).batch(args.batch)
    epoch_seconds = []
    clock = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: epoch_seconds.append(-time.perf_counter()),
        on_epoch_end=lambda epoch, logs: epoch_seconds.__setitem__(-1, epoch_seconds[-1] + time.perf_counter()),
    )
    with scope:
        model = TransformerClassifier(
            VOCABULARY,
            3,
            num_layers=1,
            hidden_dim=args.hidden_dim,
            num_heads=2,
            intermediate_dim=2 * args.hidden_dim,
            dropout=0.0,
            max_length=16,
        )
        model(tokens[:1])
        initial = Path(args.initial)
        if initial.exists():
            stored = np.load(initial)
            model.set_weights([stored[f"w{i}"] for i in range(len(stored.files))])
        else:
            np.savez(initial, **{f"w{i}": w for i, w in enumerate(model.get_weights())})
        model.compile(
            optimizer=keras.optimizers.SGD(0.5),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=False if args.no_jit else "auto",
        )
        replicas = current_replicas()
        callbacks = [clock]
        if args.run_dir:
            # A checkpoint save and the best-weights restore are collective steps across JAX processes.
            run_dir = worker_directory(Path(args.run_dir), replicas)
            callbacks += training_callbacks(run_dir, monitor="loss", early_stopping_patience=3)
        history = model.fit(replicas.shard(dataset), epochs=args.epochs, verbose=0, shuffle=False, callbacks=callbacks)
    if replicas.is_chief:
        np.savez(args.out, **{f"w{i}": w for i, w in enumerate(model.get_weights())})
    timed = epoch_seconds[1:]
    step_ms = f" step_ms {1000 * float(np.median(timed)) / args.steps:.3f}" if timed else ""
    print(f"replicas {replicas.count} processes {replicas.processes} loss {history.history['loss'][-1]:.6f}{step_ms}")


if __name__ == "__main__":
    main()

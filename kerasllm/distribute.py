"""Data-parallel training on engines that exist: tf.distribute's MirroredStrategy on the TensorFlow backend, and
the Keras distribution API (`keras.distribution.DataParallel`) on the JAX backend, in one process or several.

The runner trains inside `Distribution.scope()` and asks `current_replicas()` how the steps are spread, so a
Python user can equally write `with tf.distribute.MirroredStrategy().scope(): app.train(...)`. The model code
does not change: layers are `keras.ops` only, and tokenization stays in tf.data on every backend.

Every batch is cut to a multiple of the replicas, so each replica gets as many rows as the others and the mean
loss over the global batch is the mean of the replicas' means (the condition for equivalence with one device);
in several processes each process then takes its own rows of every global batch, so all run the same number of
steps whatever the bucket sizes. (Keras's own sharding, `rebatch` then `shard`, regroups rows across batches of
different lengths and lets processes run different step counts, which ends in a collective that never returns.)

Not `tf.distribute.MultiWorkerMirroredStrategy`: Keras 3's `fit` fails under it at the first step (checked with
TF 2.21 and Keras 3.15 over two loopback workers; keras-team/keras#20585, tensorflow/tensorflow#72388).

Importing this module is cheap (no TensorFlow, no Keras), because the backend is chosen by the environment
before Keras is first imported: `Distribution.prepare_backend()` must run first.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import os
import sys
from collections.abc import Iterator
from typing import Any

DISTRIBUTE = ("none", "mirrored", "multi-worker", "jax")

MULTI_WORKER_UNSUPPORTED = (
    "--distribute multi-worker: Keras 3's model.fit does not run under tf.distribute.MultiWorkerMirroredStrategy "
    "(TF 2.21 with Keras 3.15 fails at the first step with 'Attempt to convert a value (PerReplica...) with an "
    "unsupported type'; see keras-team/keras#20585 and tensorflow/tensorflow#72388). Train on several machines "
    "with --distribute jax --coordinator HOST:PORT --num-processes N --process-id I (docs/distributed.md)"
)


@dataclasses.dataclass(frozen=True)
class Distribution:
    """How a training run spreads its steps over devices and processes.

    Args:
        kind: "none" (one device), "mirrored" (tf.distribute.MirroredStrategy over this machine's devices),
            "jax" (keras.distribution.DataParallel over every device of every process). "multi-worker" is
            refused with the reason (see `MULTI_WORKER_UNSUPPORTED`).
        devices: split this machine's CPU into this many devices (logical devices for "mirrored",
            `JAX_NUM_CPU_DEVICES` for "jax"); None uses the devices that are there (the GPUs, or one CPU).
        coordinator: "HOST:PORT" of process 0, for "jax" over several processes.
        num_processes: processes in the job ("jax" only).
        process_id: this process, 0 to num_processes - 1; process 0 is the chief, which writes the run.

    Example:
    >>> distribution = Distribution("jax", devices=2)
    >>> # distribution.prepare_backend()  # before Keras is imported
    >>> # with distribution.scope(): app.train(...)
    """

    kind: str = "none"
    devices: int | None = None
    coordinator: str | None = None
    num_processes: int = 1
    process_id: int = 0

    def __post_init__(self) -> None:
        if self.kind == "multi-worker":
            raise ValueError(MULTI_WORKER_UNSUPPORTED)
        if self.kind not in DISTRIBUTE:
            raise ValueError(f"--distribute must be one of {', '.join(DISTRIBUTE)}, got {self.kind!r}")
        if self.devices is not None and self.devices < 1:
            raise ValueError(f"--devices must be at least 1, got {self.devices}")
        if self.devices is not None and self.kind == "none":
            raise ValueError("--devices splits the CPU for --distribute mirrored or jax; it means nothing alone")
        if self.num_processes < 1 or not 0 <= self.process_id < self.num_processes:
            raise ValueError(
                f"--process-id must be in 0..{self.num_processes - 1} for --num-processes {self.num_processes}, "
                f"got {self.process_id}"
            )
        if self.num_processes > 1 and self.kind != "jax":
            raise ValueError("several processes need --distribute jax (the one multi-machine path; see --help)")
        if self.num_processes > 1 and not self.coordinator:
            raise ValueError("several processes need --coordinator HOST:PORT (the address of process 0)")
        if self.coordinator is not None and ":" not in self.coordinator:
            raise ValueError(f"--coordinator must be HOST:PORT, got {self.coordinator!r}")

    @classmethod
    def from_arguments(
        cls,
        kind: str = "none",
        *,
        devices: int | None = None,
        coordinator: str | None = None,
        num_processes: int | None = None,
        process_id: int | None = None,
    ) -> Distribution:
        """A distribution from command-line values, the `KERAS_DISTRIBUTION_*` variables filling what is unset
        (`..._JOB_ADDRESSES`: the coordinator first, `..._NUM_PROCESSES`, `..._PROCESS_ID`)."""

        def number(value: int | None, variable: str, default: int) -> int:
            if value is not None:
                return value
            text = os.environ.get(variable)
            if text is None:
                return default
            try:
                return int(text)
            except ValueError:
                raise ValueError(f"{variable} must be an integer, got {text!r}") from None

        if coordinator is None and os.environ.get("KERAS_DISTRIBUTION_JOB_ADDRESSES"):
            coordinator = os.environ["KERAS_DISTRIBUTION_JOB_ADDRESSES"].split(",")[0]
        return cls(
            kind,
            devices=devices,
            coordinator=coordinator,
            num_processes=number(num_processes, "KERAS_DISTRIBUTION_NUM_PROCESSES", 1),
            process_id=number(process_id, "KERAS_DISTRIBUTION_PROCESS_ID", 0),
        )

    def prepare_backend(self) -> None:
        """Set what the backend reads when it starts: KERAS_BACKEND=jax for "jax", the CPU device count (logical
        devices for "mirrored"), gloo collectives for JAX on CPU across processes. Call it before TensorFlow runs
        anything; refuses once Keras runs on another backend or TensorFlow on another device split."""
        if self.kind == "mirrored" and self.devices is not None:
            import tensorflow as tf

            _split_cpu(tf, self.devices)
        if self.kind != "jax":
            return
        if importlib.util.find_spec("jax") is None:
            raise ValueError("--distribute jax needs JAX in this environment: pip install 'kerasllm[jax]'")
        if "keras" in sys.modules and sys.modules["keras"].backend.backend() != "jax":
            raise ValueError(
                "--distribute jax needs the JAX backend, but Keras was already imported on another one: "
                "set KERAS_BACKEND=jax before Python imports Keras"
            )
        os.environ["KERAS_BACKEND"] = "jax"
        if self.devices is not None:
            os.environ["JAX_NUM_CPU_DEVICES"] = str(self.devices)
        if self.num_processes > 1:
            os.environ.setdefault("JAX_CPU_COLLECTIVES_IMPLEMENTATION", "gloo")

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        """Build, compile and fit inside this: the strategy or distribution is in force for all three."""
        if self.kind == "none":
            yield
        elif self.kind == "mirrored":
            import tensorflow as tf

            with tf.distribute.MirroredStrategy().scope():
                yield
        else:
            import keras

            if self.num_processes > 1:
                _start_processes(self)
            # auto_shard_dataset=False: `Replicas.shard` gives each process its rows (see the module docstring).
            with keras.distribution.DataParallel(auto_shard_dataset=False).scope():
                try:
                    yield
                except RuntimeError as error:  # JAX's runtime errors: a collective lost a peer
                    if self.num_processes == 1 or type(error).__name__ not in ("JaxRuntimeError", "XlaRuntimeError"):
                        raise
                    raise ConnectionError(
                        f"a process of this {self.num_processes}-process job stopped ({str(error).splitlines()[0][:160]}): "
                        "start every process again with the same command; each resumes from its last backup"
                    ) from None


def _split_cpu(tf: Any, count: int) -> None:
    cpu = tf.config.list_physical_devices("CPU")[0]
    wanted = [tf.config.LogicalDeviceConfiguration()] * count
    try:
        tf.config.set_logical_device_configuration(cpu, wanted)
    except RuntimeError:  # TensorFlow has started: the split only holds if it is already the one asked for
        if len(tf.config.list_logical_devices("CPU")) != count:
            raise ValueError(
                f"--devices {count}: TensorFlow already runs on {len(tf.config.list_logical_devices('CPU'))} CPU "
                "devices in this process; split the CPU before TensorFlow starts (a new process)"
            ) from None


_started: list[Distribution] = []


def _start_processes(distribution: Distribution) -> None:
    """`keras.distribution.initialize` once per process (JAX allows one)."""
    import keras

    if _started:
        if _started[0] != distribution:
            raise ValueError(f"this process already joined {_started[0]}; one job per process")
        return
    keras.distribution.initialize(
        job_addresses=distribution.coordinator,
        num_processes=distribution.num_processes,
        process_id=distribution.process_id,
    )
    _started.append(distribution)


@dataclasses.dataclass(frozen=True)
class Replicas:
    """How the steps in force are spread: `count` replicas over all processes, `processes` processes, this one
    `process_index` (0 is the chief)."""

    count: int = 1
    processes: int = 1
    process_index: int = 0

    @property
    def is_chief(self) -> bool:
        return self.process_index == 0

    def shard(self, dataset: Any) -> Any:
        """This process's part of every global batch of `dataset`, each batch first cut to a multiple of `count`
        rows (a batch with fewer rows than replicas is dropped): at most count - 1 rows per batch are left out."""
        if self.count == 1:
            return dataset
        import tensorflow as tf

        count, processes, index = self.count, self.processes, self.process_index

        def rows(element: Any) -> Any:
            return tf.shape(tf.nest.flatten(element)[0])[0]

        def own_rows(*element: Any) -> Any:
            element = element[0] if len(element) == 1 else element
            share = (rows(element) // count) * count // processes

            def cut(tensor: Any) -> Any:
                tensor = tensor[index * share : (index + 1) * share]
                # Keras builds a model under tf.distribute from the replicas' mean first batch, and there is no
                # mean of booleans: a mask travels as int8, and the model's bool input casts it back.
                return tf.cast(tensor, tf.int8) if tensor.dtype == tf.bool else tensor

            return tf.nest.map_structure(cut, element)

        return dataset.filter(lambda *element: rows(element) >= count).map(own_rows)


def current_replicas() -> Replicas:
    """The replicas of the strategy (TensorFlow) or distribution (JAX) in force, one when there is none."""
    import keras

    if keras.backend.backend() == "jax":
        distribution = keras.distribution.distribution()
        if distribution is None:
            return Replicas()
        import jax

        return Replicas(int(distribution.device_mesh.devices.size), jax.process_count(), jax.process_index())
    import tensorflow as tf

    return Replicas(int(tf.distribute.get_strategy().num_replicas_in_sync))

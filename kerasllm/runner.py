"""The run lifecycle every app shares: run directory, config, vocabularies, `model.fit`, resume, export.

An app supplies only what is its own (an `App`: its config class, the texts its vocabularies learn from, its
datasets, model, compile settings, evaluation and serving module); `train`, `load_run`, `write_evaluation` and
`export` do the rest the same way for every app. A run directory holds:

    run.json          what the run trains on (the app's own keys, e.g. corpus and pair)
    config.json       the validated config (a resume must bring the same one)
    <name>.vocab      one WordPiece vocabulary per name in `App.vocabularies`
    best.keras        the best checkpoint by val_loss; backup/ (resume), history.csv, logs/ (TensorBoard)
    finished.json     written once `fit` has returned (early stopping, time budget or last epoch)
    eval_<split>.json after evaluation

Weights never go into git (`runs/` is ignored).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import shutil
import time
import types
import typing
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import keras

from kerasllm.data.tokenizer import SubwordTokenizer
from kerasllm.distribute import Replicas, current_replicas
from kerasllm.export import export_saved_model, serving_copy
from kerasllm.training import training_callbacks

DTYPE_POLICIES = (None, "float32", "mixed_bfloat16", "mixed_float16")
# A resume may train longer than first planned; every other setting must be the run's own.
RESUMABLE_CHANGES = ("epochs", "time_budget_minutes")


def read_json(path: str | Path, *, what: str = "file") -> Any:
    """Parse a JSON file, naming it in any error (missing, not UTF-8, not JSON)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"no {what} at {path}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text: is it the right file?") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error.msg} at line {error.lineno} column {error.colno})") from None


def _describe(hint: Any) -> str:
    names = {
        int: "an integer",
        float: "a number",
        bool: "true or false",
        str: "a string",
        dict: "a JSON object",
        list: "a JSON list",
        type(None): "null",
        Any: "any value",
    }
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in typing.get_args(hint))
    return names.get(typing.get_origin(hint) or hint, str(hint))


def _matches(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a type hint (JSON has no int/float split: an integer is also a number)."""
    origin = typing.get_origin(hint) or hint
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(hint))
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if origin is bool:
        return isinstance(value, bool)
    if origin is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, origin) if isinstance(origin, type) else True


def check_arguments(function: Any, values: Any, where: str, *, exclude: tuple[str, ...] = ()) -> None:
    """Check a JSON object of keyword arguments against `function`'s signature before anything runs.

    Every key must name a parameter (other than `exclude`), and every value must fit the parameter's type hint, or
    the type of its default when it has no hint, so that `"beam_size": "four"` fails here with one line instead
    of deep inside a traced graph.

    Raises:
        ValueError: naming `where`, the key, what was expected and what was found.
    """
    if not isinstance(values, dict):
        raise ValueError(f"{where} must be a JSON object of arguments, got {json.dumps(values)}")
    target = function.__init__ if inspect.isclass(function) else function
    parameters = {
        name: parameter
        for name, parameter in inspect.signature(target).parameters.items()
        if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
        and name != "self"
        and name not in exclude
    }
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # a hint naming a type not importable here: fall back to the defaults' types
        hints = {}
    for key, value in values.items():
        if key not in parameters:
            raise ValueError(f"{where}: unknown argument {key!r}; known: {', '.join(sorted(parameters))}")
        hint = hints.get(key)
        default = parameters[key].default
        if hint is None and default is not inspect.Parameter.empty and default is not None:
            hint = type(default)
        if hint is not None and not _matches(value, hint):
            raise ValueError(f"{where}: {key} must be {_describe(hint)}, got {json.dumps(value)}")


@dataclasses.dataclass
class RunConfig:
    """The settings every app's run has; an app subclasses it with its own (see each app's configs/*.json).

    Args:
        model: which of the app's `MODELS` to build.
        model_args: that model's constructor arguments (vocabulary sizes are filled in by the app).
        vocabulary_size: WordPiece vocabulary size of each vocabulary.
        max_tokens: tokens kept per text, the one truncation length of the run: training, evaluation and the
            serving graph all cut there, so what is served is what was trained.
        epochs: upper bound on epochs; `time_budget_minutes` may stop earlier.
        steps_per_epoch: batches per epoch for an app whose training set repeats (a language model's packed
            blocks), None for one pass over the training set.
        time_budget_minutes: wall-clock training budget, or None.
        learning_rate: constant Adam rate, where the app's recipe uses one.
        lr_decay_patience, lr_decay_factor: with `learning_rate`, multiply the rate by the factor after this
            many epochs without val_loss improvement; None keeps it constant.
        early_stopping_patience: epochs without val_loss improvement before stopping; None disables it.
        mixed_precision: the dtype policy the model is built with (None or "float32": float32), passed to the
            model's constructor, never set process-wide.
        jit_compile: XLA-compile the train step.
        seed: shuffling and initialisation seed.
    """

    model: str = ""
    model_args: dict[str, Any] = dataclasses.field(default_factory=dict)
    vocabulary_size: int = 8000
    max_tokens: int = 64
    epochs: int = 30
    steps_per_epoch: int | None = None
    time_budget_minutes: float | None = None
    learning_rate: float | None = None
    lr_decay_patience: int | None = None
    lr_decay_factor: float = 0.5
    early_stopping_patience: int | None = 5
    mixed_precision: str | None = None
    jit_compile: bool = True
    seed: int = 0

    # The app's presets folder and its model classes by config name (`model_args` are checked against them).
    PRESETS: ClassVar[Path | None] = None
    MODELS: ClassVar[dict[str, type]] = {}

    @classmethod
    def presets(cls) -> list[str]:
        return sorted(path.stem for path in cls.PRESETS.glob("*.json")) if cls.PRESETS else []

    @classmethod
    def load(cls, name_or_path: str | Path) -> RunConfig:
        """A preset name (`tiny`, `transformer`, ...) or a path to a JSON file, fully validated."""
        path = Path(name_or_path)
        if not path.suffix and cls.PRESETS is not None:
            path = cls.PRESETS / f"{name_or_path}.json"
        if not path.exists():
            raise FileNotFoundError(
                f"no config {str(name_or_path)!r}: give a JSON file or one of the presets: {', '.join(cls.presets())}"
            )
        return cls.from_dict(read_json(path, what="config"), where=str(path))

    @classmethod
    def from_dict(cls, values: Any, *, where: str = "config") -> RunConfig:
        """Build and validate a config from plain JSON values; every error is one line naming `where`."""
        if not isinstance(values, dict):
            raise ValueError(f"{where}: a config is a JSON object of settings, found {type(values).__name__}")
        hints = typing.get_type_hints(cls)
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{where}: unknown config keys {unknown}; known keys: {sorted(known)}")
        for key, value in values.items():
            if not _matches(value, hints[key]):
                raise ValueError(f"{where}: {key} must be {_describe(hints[key])}, got {json.dumps(value)}")
        config = cls(**values)
        config.validate(where)
        return config

    def validate(self, where: str) -> None:
        """Checks beyond types; an app extends it (calling this one) for its own settings."""
        if self.model not in self.MODELS:
            raise ValueError(f"{where}: model must be one of {sorted(self.MODELS)}, got {self.model!r}")
        check_arguments(
            self.MODELS[self.model], self.model_args, f"{where}: model_args", exclude=self.filled_in_model_args()
        )
        for key in ("vocabulary_size", "max_tokens", "epochs", "steps_per_epoch"):
            if getattr(self, key) is not None and getattr(self, key) < 1:
                raise ValueError(f"{where}: {key} must be at least 1, got {getattr(self, key)}")
        if self.mixed_precision not in DTYPE_POLICIES:
            raise ValueError(
                f"{where}: mixed_precision must be one of {list(DTYPE_POLICIES)}, got {self.mixed_precision!r}"
            )
        if self.lr_decay_patience is not None and self.learning_rate is None:
            raise ValueError(
                f"{where}: lr_decay_patience needs a constant learning_rate (a schedule sets the rate itself)"
            )

    def filled_in_model_args(self) -> tuple[str, ...]:
        """Model constructor arguments the app fills in itself (vocabulary sizes, dtype): not for model_args."""
        return ("dtype", "name")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")


@dataclasses.dataclass
class Run:
    """A run directory's pieces, as the commands after `train` use them.

    Args:
        run_dir: the directory.
        config: its validated config.
        info: what it trains on (`run.json`, the app's own keys).
        tokenizers: one tokenizer (`App.tokenizer_class`) per name in `App.vocabularies`.
        model: the best checkpoint, or the model being trained.
    """

    run_dir: Path
    config: RunConfig
    info: dict[str, Any]
    tokenizers: dict[str, Any]
    model: keras.Model | None = None


class App:
    """What an app gives the runner. Subclass it and fill in the class attributes and methods.

    Attributes:
        name: the app's command name (`kerasllm <name> ...`).
        config_class: its `RunConfig` subclass.
        vocabularies: the names of the run's vocabularies (e.g. `("source", "target")`).
    """

    name: ClassVar[str] = ""
    config_class: ClassVar[type[RunConfig]] = RunConfig
    vocabularies: ClassVar[tuple[str, ...]] = ("vocabulary",)
    # What picks the best checkpoint; None keeps the last epoch's model (an app without a validation set whose
    # schedule decays over the whole run).
    monitor: ClassVar[str | None] = "val_loss"

    def vocabulary_texts(self, info: dict[str, Any], data_dir: str | None) -> dict[str, list[str]]:
        """The training texts each vocabulary learns from, by vocabulary name."""
        raise NotImplementedError

    def special_tokens(self, name: str) -> tuple[str, ...]:
        """Reserved tokens a vocabulary needs beyond [PAD] [UNK] [START] [END] (e.g. [MASK] for pre-training)."""
        return ()

    def tokenizer_class(self, config: RunConfig) -> type:
        """The tokenizer of the run's vocabularies: a class with `train(texts, vocabulary_size, special_tokens)`,
        `save(path)` and `load(path)` (WordPiece unless the app's config chooses another, e.g. characters)."""
        return SubwordTokenizer

    def train_tokenizer(self, config: RunConfig, name: str, texts: list[str]) -> Any:
        """A new tokenizer for vocabulary `name`, learned from its texts (with the config's vocabulary_size)."""
        return self.tokenizer_class(config).train(texts, config.vocabulary_size, self.special_tokens(name))

    def datasets(self, run: Run, data_dir: str | None) -> tuple[Any, Any]:
        """`(train, validation)` tf.data datasets of `(inputs, targets)` batches, cut at `config.max_tokens`."""
        raise NotImplementedError

    def build_model(
        self, config: RunConfig, vocabulary_sizes: dict[str, int], info: dict[str, Any] | None = None
    ) -> keras.Model:
        """The configured model, built (so `summary()` and checkpoint restore work), in `config.mixed_precision`,
        for vocabularies of these sizes (by vocabulary name) and the run's `info` (e.g. its classes; None when
        there is no run, as for `kerasllm diagram`)."""
        raise NotImplementedError

    def compile(self, model: keras.Model, config: RunConfig, steps_per_epoch: int | None) -> None:
        """`model.compile(...)` with the app's optimizer, loss and metrics; `steps_per_epoch` (None when the
        training set does not know its length) is there for a schedule over the whole run."""
        raise NotImplementedError

    def serving_module(self, run: Run, model: keras.Model, **options: Any) -> Any:
        """The `kerasllm.export.ServingModule` that serves `model` (a serving copy of the run's)."""
        raise NotImplementedError


def _differences(saved: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    keys = sorted(set(saved) | set(new))
    changed = []
    for key in keys:
        if isinstance(saved.get(key), dict) and isinstance(new.get(key), dict):
            changed += _differences(saved[key], new[key], f"{prefix}{key}.")
        elif saved.get(key) != new.get(key):
            changed.append(f"{prefix}{key}")
    return changed


def _check_resume(app: App, config: RunConfig, run_dir: Path, info: dict[str, Any]) -> None:
    """Refuse, before anything is written, a run directory that holds another run."""
    if (run_dir / "run.json").exists():
        previous = read_json(run_dir / "run.json", what="run.json")
        if previous != info:
            raise ValueError(f"{run_dir} holds a run on {previous}, not {info}; give another --out")
    if (run_dir / "config.json").exists():
        saved = app.config_class.load(run_dir / "config.json").to_dict()
        changed = [key for key in _differences(saved, config.to_dict()) if key not in RESUMABLE_CHANGES]
        if changed:
            raise ValueError(
                f"{run_dir} was trained with another config (differs in {', '.join(changed)}); resume "
                f"it without --config (or with --config {run_dir / 'config.json'}), or give another --out"
            )


def _vocabulary_path(run_dir: Path, name: str) -> Path:
    return run_dir / f"{name}.vocab"


def _check_init_from(app: App, init_from: Path) -> None:
    missing = [
        path.name
        for path in [init_from / "best.keras"] + [_vocabulary_path(init_from, name) for name in app.vocabularies]
        if not path.exists()
    ]
    if missing:
        raise FileNotFoundError(
            f"--init-from {init_from} has no {', '.join(missing)}: give a trained run directory of the {app.name} app"
        )


def _tokenizers(app: App, run: Run, data_dir: str | None) -> dict[str, Any]:
    """The run's vocabularies, learned from the app's texts on first use."""
    texts = None
    for name in app.vocabularies:
        path = _vocabulary_path(run.run_dir, name)
        if not path.exists():
            texts = texts if texts is not None else app.vocabulary_texts(run.info, data_dir)
            app.train_tokenizer(run.config, name, texts[name]).save(path)
    tokenizer_class = app.tokenizer_class(run.config)
    return {name: tokenizer_class.load(_vocabulary_path(run.run_dir, name)) for name in app.vocabularies}


def steps_per_epoch(config: RunConfig, train_set: Any) -> int | None:
    """Batches per epoch: the config's, else one pass over the training set when tf.data knows its length."""
    if config.steps_per_epoch is not None:
        return config.steps_per_epoch
    cardinality = int(train_set.cardinality())
    return cardinality if cardinality > 0 else None


def inherit_weights(model: keras.Model, source: keras.Model) -> list[str]:
    """Copy into `model` the weights of every layer that `source` has under the same name with the same weight
    shapes (a pre-trained backbone into a fine-tuning model); returns the names of the layers copied."""
    by_name = {layer.name: layer for layer in source.layers}
    copied = []
    for layer in model.layers:
        other = by_name.get(layer.name)
        if other is None or not layer.weights:
            continue
        if [w.shape for w in layer.weights] == [w.shape for w in other.weights]:
            layer.set_weights(other.get_weights())
            copied.append(layer.name)
    return copied


def prepare_training(app: App, run: Run, data_dir: str | None = None) -> tuple[keras.Model, Any, Any]:
    """The compiled model and the training and validation datasets of a run, as `train` uses them.

    Seeds Keras with the config's seed and learns the run's vocabularies on first use (`run.tokenizers` is set).
    """
    keras.utils.set_random_seed(run.config.seed)
    run.tokenizers = _tokenizers(app, run, data_dir)
    train_set, val_set = app.datasets(run, data_dir)
    vocabulary_sizes = {name: tokenizer.vocabulary_size for name, tokenizer in run.tokenizers.items()}
    model = app.build_model(run.config, vocabulary_sizes, run.info)
    app.compile(model, run.config, steps_per_epoch(run.config, train_set))
    replicas = current_replicas()
    if keras.backend.backend() == "jax":
        # On JAX the alternative to a jitted step is op-by-op eager execution, not a graph: always jit it.
        model.jit_compile = True
    elif replicas.count > 1:
        # XLA cannot compile a step whose variables are mirrored on other devices (what Keras's "auto" knows), and
        # Keras's loop of several steps per call fails under tf.distribute when an epoch ends inside a call.
        model.jit_compile = False
        model.steps_per_execution = 1
    # Under a strategy or distribution (kerasllm.distribute), every batch splits evenly over the replicas.
    return model, replicas.shard(train_set), None if val_set is None else replicas.shard(val_set)


def train(
    app: App,
    config: RunConfig,
    run_dir: str | Path,
    info: dict[str, Any],
    *,
    data_dir: str | None = None,
    init_from: str | Path | None = None,
    verbose: int | str = "auto",
    initialize: Callable[[keras.Model, Run], None] | None = None,
) -> keras.callbacks.History | None:
    """Train with `model.fit`; calling it again on the same `run_dir` resumes where it stopped.

    Every check (another run's directory, another config, a bad `--init-from`) happens before anything is written.
    Called inside a `kerasllm.distribute.Distribution.scope()` (or any tf.distribute strategy's scope), it trains
    data-parallel; in a job of several processes only the chief (process 0) writes `run_dir`, and every other
    process writes the same files into its own `run_dir/workers/<process>/`: every process must run the same
    callbacks, because on JAX a checkpoint save or a weight restore is a step all processes take together.

    Args:
        app: the app.
        config: its validated run config.
        run_dir: the run directory.
        info: what the run trains on (written to `run.json`, e.g. `{"corpus": ..., "pair": ...}`).
        data_dir: corpus root (default `$KERASLLM_DATA` or ../shared/data).
        init_from: a trained run directory of the same app whose vocabularies the new run takes and whose
            weights it starts from wherever a layer has the same name and weight shapes (pre-training, then
            fine-tuning). Ignored when resuming.
        verbose: `model.fit` verbosity.
        initialize: called as `initialize(model, run)` on a new run without `init_from`, with the model
            built and compiled and the vocabularies learned, before `fit` (e.g. to load pretrained word vectors
            into the token embedding). Not called when resuming: the backup holds the weights.

    Returns:
        the `fit` history, or None when `run_dir` holds a finished run (nothing is trained).
    """
    replicas = current_replicas()
    _check_replicas(config, replicas)
    run_dir = worker_directory(Path(run_dir), replicas)
    finished = run_dir / "finished.json"
    if finished.exists():
        print(
            f"{run_dir} holds a finished run ({finished.read_text().strip()}); "
            f"delete {finished} to train it further, or give another --out"
        )
        return None
    _check_resume(app, config, run_dir, info)
    resuming = (run_dir / "config.json").exists()
    init_from = None if resuming or init_from is None else Path(init_from)
    if init_from is not None:
        _check_init_from(app, init_from)

    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "run.json").write_text(json.dumps(info, indent=2) + "\n")
    config.save(run_dir / "config.json")
    if init_from is not None:
        for name in app.vocabularies:
            shutil.copyfile(_vocabulary_path(init_from, name), _vocabulary_path(run_dir, name))
    run = Run(run_dir, config, info, {})
    model, train_set, val_set = prepare_training(app, run, data_dir)
    if init_from is not None:
        copied = inherit_weights(model, load_checkpoint(init_from / "best.keras"))
        print(f"initialised from {init_from}: {len(copied)} layers ({', '.join(copied) or 'none matched'})")
    elif initialize is not None and not resuming:
        initialize(model, run)
    model.summary(print_fn=lambda line, **_: print(line))
    callbacks = training_callbacks(
        run_dir,
        monitor=app.monitor,
        early_stopping_patience=config.early_stopping_patience,
        budget_minutes=config.time_budget_minutes,
        lr_decay_patience=config.lr_decay_patience,
        lr_decay_factor=config.lr_decay_factor,
    )
    started = time.perf_counter()
    with warnings.catch_warnings():
        if replicas.count > 1:  # a sharded set learns its length at the end of its first epoch; Keras warns then
            warnings.filterwarnings("ignore", message="Your input ran out of data", category=UserWarning)
        # shuffle=False: the datasets reshuffle themselves each epoch (Keras would only warn that it cannot).
        history = model.fit(
            train_set,
            validation_data=val_set,
            epochs=config.epochs,
            steps_per_epoch=config.steps_per_epoch,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,
        )
    # Only a fit that returned gets here: a killed run leaves no marker and resumes from its backup.
    finished.write_text(
        json.dumps(
            {
                "epochs": history.epoch[-1] + 1 if history.epoch else None,
                "session_seconds": round(time.perf_counter() - started, 1),
                "peak_rss_mb": peak_rss_mb(),
            }
        )
        + "\n"
    )
    return history


def worker_directory(run_dir: Path, replicas: Replicas) -> Path:
    """Where this process keeps its run: `run_dir` for the chief, `run_dir/workers/<process>` for the others."""
    return run_dir if replicas.is_chief else run_dir / "workers" / str(replicas.process_index)


def _check_replicas(config: RunConfig, replicas: Replicas) -> None:
    if replicas.processes > 1 and config.time_budget_minutes is not None:
        # Each process would read its own clock and could stop a step apart from the others, which then wait
        # for it forever.
        raise ValueError(
            f"a time budget ({config.time_budget_minutes} minutes) cannot stop {replicas.processes} processes at "
            'the same step: give a config with "time_budget_minutes": null and set --epochs'
        )
    batch_size = getattr(config, "batch_size", None)
    if isinstance(batch_size, int) and batch_size % replicas.count:
        raise ValueError(
            f"batch_size {batch_size} does not split over {replicas.count} replicas: give a multiple of "
            f"{replicas.count} in the config"
        )


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB (Linux reports KiB, macOS bytes)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)


def load_checkpoint(path: str | Path) -> keras.Model:
    """`keras.saving.load_model`, with one clear line for a missing, damaged or incompatible file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no {path.name} in {path.parent}: train first with `--out {path.parent}`")
    try:
        return keras.saving.load_model(path)
    except Exception as error:  # say which file, what is wrong with it, and what will actually help.
        detail = f"{type(error).__name__}: {str(error).splitlines()[0][:120]}"
        # A whole .keras archive that does not load was written for other classes (an older kerasllm: the model
        # arguments or layer layout changed); a truncated one is not even a zip archive.
        problem = "was written by another version of kerasllm" if zipfile.is_zipfile(path) else "is damaged"
        raise ValueError(
            f"{path} {problem} ({detail}). Training does not rewrite it once the run has finished: train again "
            f"with another --out, or delete {path.parent} and retrain"
        ) from None


def load_run(app: App, run_dir: str | Path) -> Run:
    """The pieces of a trained run directory: config, run info, tokenizers and the best checkpoint."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").exists():
        raise FileNotFoundError(f"{run_dir} holds no run: train first with `kerasllm {app.name} train --out {run_dir}`")
    config = app.config_class.load(run_dir / "config.json")
    info = read_json(run_dir / "run.json", what="run.json")
    model = load_checkpoint(run_dir / "best.keras")
    tokenizer_class = app.tokenizer_class(config)
    tokenizers = {name: tokenizer_class.load(_vocabulary_path(run_dir, name)) for name in app.vocabularies}
    return Run(run_dir, config, info, tokenizers, model)


def write_evaluation(run: Run, split: str, result: dict[str, Any]) -> Path:
    """Write `eval_<split>.json` in the run directory and return its path."""
    path = run.run_dir / f"eval_{split}.json"
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return path


def export(
    app: App,
    run_dir: str | Path,
    base_path: str | Path,
    *,
    version: int | None = None,
    serving_dtype: str | None = "float32",
    **options: Any,
) -> Path:
    """Export a trained run as `base_path/<version>/` for TF Serving through the app's serving module.

    Args:
        app: the app.
        run_dir: a trained run directory.
        base_path: the TF Serving model base path, e.g. `saved_models/translate`.
        version: integer version; default the next free one.
        serving_dtype: dtype policy of the served model (None keeps the trained one); see
            `kerasllm.export.serving_copy`.
        **options: the app's serving-module options (e.g. the search).

    Returns:
        the version directory.
    """
    run = load_run(app, run_dir)
    module = app.serving_module(run, serving_copy(run.model, serving_dtype), **options)
    return export_saved_model(module, base_path, version=version)

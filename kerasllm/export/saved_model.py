"""Export an app's serving module as a TF Serving SavedModel: one version folder per export.

Each app writes its serving graph by hand as a `ServingModule` (a `tf.Module`) rather than with
`keras.Model.export`: that exports `call()` only, while serving needs tokenization, the whole decoding loop
and detokenization in one signature (and keras-hub#1629 / #2015 show tokenizer resources going untracked on
that path). The signature is traced with `jit_compile=False`: the stock tensorflow_model_server cannot run
XLA (tensorflow/serving#2214), so the graph holds only core TF and tensorflow-text ops.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

import keras
import tensorflow as tf

# Every folder and file of an export, and each base folder the export creates: a model server often runs as
# another user (the tensorflow/serving image as root in a container, a service account on a host), and
# tempfile.mkdtemp makes the version folder 0700.
DIRECTORY_MODE, FILE_MODE = 0o755, 0o644


class ServingModule(tf.Module):
    """Base class of an app's serving graph: holds the Keras model and tracks its variables.

    A subclass defines `serve`, a `tf.function(input_signature=[...], jit_compile=False)` taking and returning
    batches (every output one row per input row); `export_saved_model` exports it as `serving_default`.

    Args:
        model: the Keras model the signature runs (other trackables, such as tokenizers, go on `self` too).

    Example:
    >>> class Upper(ServingModule):
    ...     @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")], jit_compile=False)
    ...     def serve(self, text):
    ...         return {"upper": tf.strings.upper(text)}
    >>> # export_saved_model(Upper(model), "saved_models/upper")
    """

    def __init__(self, model: keras.Model):
        super().__init__()
        self.model = model
        # Keras 3 variables are not tf.Module children: without this list of their tf.Variables the SavedModel's
        # object graph holds none, so its restore op restores nothing. tf.saved_model.load hides that (it binds the
        # captured values itself), but TF1-style loaders, tensorflow_model_server's among them, then fail with
        # "Could not find variable" (tensorflow/serving#2250).
        self.model_variables = [variable.value for variable in model.variables]


def next_version(base_path: str | Path) -> int:
    """1 + the highest integer version under `base_path` (TF Serving serves the highest)."""
    base_path = Path(base_path)
    if not base_path.exists():
        return 1
    return max((int(p.name) for p in base_path.iterdir() if p.is_dir() and p.name.isdigit()), default=0) + 1


def layer_dtype_policies(model: keras.Model) -> set[str]:
    """The dtype policies its weighted layers compute under. Not `model.dtype_policy`: a mixed-precision model
    reloaded under float32 reports a float32 policy while its layers still compute in bfloat16/float16."""
    return {layer.dtype_policy.name for layer in model.layers if layer.weights}


def with_dtype_policy(model: keras.Model, dtype_policy: str) -> keras.Model:
    """A copy of a functional kerasllm model whose layers compute in `dtype_policy`, with the same weights.

    Mixed-precision training keeps float32 variables, so a float32 copy is the trained model without
    the bfloat16/float16 rounding of its activations.
    """
    config = model.get_config()
    config["dtype"] = dtype_policy
    copy = model.__class__.from_config(config)
    copy.set_weights(model.get_weights())
    return copy


def serving_copy(model: keras.Model, serving_dtype: str | None = "float32") -> keras.Model:
    """The model as it is best served: computing in `serving_dtype`, and untied when it has `untied()`.

    Args:
        model: a trained kerasllm model.
        serving_dtype: dtype policy of the served model (None keeps the model's). float32 by default: the
            Multi30K Transformer trained in mixed_bfloat16 serves a 20-word sentence faster in float32 on every
            CPU measured (`bench/decode_speed.py --run`; the figures are in bench/README.md): at batch 1 the
            bfloat16 casts cost more than the cheaper arithmetic saves.

    Returns:
        `model` itself when nothing changes, else a copy with the same weights. A tied output embedding is
        served as `model.untied()`: the same logits from the weight layout a decoding step reads fastest.

    Example:
    >>> # module = TranslateModule(serving_copy(model), source_tokenizer, target_tokenizer, max_source_length=128)
    """
    if serving_dtype is not None and layer_dtype_policies(model) != {serving_dtype}:
        model = with_dtype_policy(model, serving_dtype)
    if hasattr(model, "untied"):
        model = model.untied()
    return model


def _serving_function(module: tf.Module) -> tf.types.experimental.ConcreteFunction:
    """`module.serve` as the concrete function of its input signature, checked to be servable."""
    serve = getattr(module, "serve", None)
    if not isinstance(serve, tf.types.experimental.PolymorphicFunction):
        raise ValueError(f"{type(module).__name__} has no `serve` tf.function: define one (see ServingModule)")
    if serve.input_signature is None:
        raise ValueError(
            f"{type(module).__name__}.serve has no input_signature: TF Serving needs fixed input names, "
            "dtypes and ranks, e.g. input_signature=[tf.TensorSpec([None], tf.string, name='text')]"
        )
    concrete = serve.get_concrete_function()
    if concrete.function_def.attr["_XlaMustCompile"].b:
        raise ValueError(
            f"{type(module).__name__}.serve is jit-compiled: the stock tensorflow_model_server cannot "
            "run XLA (tensorflow/serving#2214); trace it with jit_compile=False"
        )
    return concrete


def _staging_prefix() -> str:
    # The host and pid name the export that owns the folder, so a later export can tell a killed one's leftovers
    # from a concurrent export's work in progress.
    return f".staging-{socket.gethostname()}-{os.getpid()}-"


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_staging(base_path: str | Path) -> list[Path]:
    """Delete the staging folders of killed exports into `base_path`; return them.

    A staging folder is named `.staging-<host>-<pid>-<random>`. One is stale when it was made on this host by a
    process that no longer exists; folders of live processes (a concurrent export) and of other hosts (a shared
    file system, where this host cannot see the process) are left alone. Not an age bound: a large model's
    export can take any time, and deleting its folder under it would fail it. A dead pid reused by an
    unrelated process only delays the cleanup to a later export.
    """
    ours = f".staging-{socket.gethostname()}"
    removed = []
    for path in Path(base_path).glob(".staging-*"):
        owner, _, _ = path.name.rpartition("-")  # the random part (tempfile's) has no "-"
        staged_on, _, pid = owner.rpartition("-")
        if staged_on == ours and pid.isdigit() and not _process_exists(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _make_directories(path: Path) -> None:
    """`mkdir -p path`, each folder it creates readable by all (a umask of 077 would hide them from the server)."""
    missing = [parent for parent in [path, *path.parents] if not parent.exists()]
    path.mkdir(parents=True, exist_ok=True)
    for directory in missing:
        directory.chmod(DIRECTORY_MODE)


def _make_readable(root: Path) -> None:
    root.chmod(DIRECTORY_MODE)
    for directory, subdirectories, files in os.walk(root):
        for name in subdirectories:
            os.chmod(os.path.join(directory, name), DIRECTORY_MODE)
        for name in files:
            os.chmod(os.path.join(directory, name), FILE_MODE)


def export_saved_model(module: tf.Module, base_path: str | Path, *, version: int | None = None) -> Path:
    """Write `base_path/<version>/`, a SavedModel whose `serving_default` is `module.serve`.

    The SavedModel is written to a staging folder beside the target and renamed into place, so a model server
    watching `base_path` never sees a half-written version; staging folders of killed exports are removed first
    (`remove_stale_staging`). Folders are made 0755 and files 0644, for a server running as another user.

    Args:
        module: an app's serving module (a `ServingModule`, or any `tf.Module` whose variables it tracks) with a
            `serve` tf.function that has an input_signature and is not jit-compiled.
        base_path: the TF Serving model base path, e.g. `saved_models/translate`.
        version: integer version; default the next free one.

    Returns:
        the version directory.

    Example:
    >>> # export_saved_model(TranslateModule(serving_copy(model), src_tok, tgt_tok, max_source_length=128),
    >>> #                    "saved_models/translate")
    """
    serve = _serving_function(module)
    base_path = Path(base_path)
    _make_directories(base_path)
    remove_stale_staging(base_path)
    version = next_version(base_path) if version is None else version
    target = base_path / str(version)
    if target.exists():
        raise FileExistsError(f"{target} exists: choose another --version or remove it first")
    staging = Path(tempfile.mkdtemp(prefix=_staging_prefix(), dir=base_path))
    try:
        tf.saved_model.save(module, str(staging), signatures={"serving_default": serve})
        _make_readable(staging)
        try:
            os.replace(staging, target)
        except OSError:
            if target.exists():  # a concurrent export took this version after the check above
                raise FileExistsError(f"{target} was written by another export meanwhile: export again") from None
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target

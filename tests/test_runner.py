"""The shared run lifecycle: config validation before anything is written, resume rules, weight inheritance."""

from __future__ import annotations

import json

import numpy as np
import pytest

from apps.cli import main
from apps.translate import app
from apps.translate.config import CONFIG_DIR, TranslateConfig
from kerasllm import runner


def _config_file(tmp_path, **changes):
    values = json.loads((CONFIG_DIR / "tiny.json").read_text()) | changes
    path = tmp_path / "config.json"
    path.write_text(json.dumps(values))
    return path


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"epochs": "ten"}, 'epochs must be an integer, got "ten"'),
        ({"model_args": "big"}, "model_args must be a JSON object"),
        ({"decoding": {"search": "beam", "beam_size": "four"}}, 'beam_size must be an integer, got "four"'),
        ({"decoding": {"search": "widest"}}, "search must be one of"),
        ({"decoding": {"search": "greedy", "beam_size": 4}}, "unknown argument 'beam_size'"),
        ({"model_args": {"hidden_dim": 128, "num_heads": 4, "layers": 3}}, "unknown argument 'layers'"),
        ({"model_args": {"hidden_dim": 128.5}}, "hidden_dim must be an integer"),
        ({"time_budget_minutes": "soon"}, "time_budget_minutes must be a number or null"),
        ({"jit_compile": 1}, "jit_compile must be true or false"),
        ({"model": "rnn"}, "model must be one of"),
        ({"mixed_precision": "float8"}, "mixed_precision must be one of"),
        ({"epochs": 0}, "epochs must be at least 1"),
        ({"colour": "blue"}, "unknown config keys"),
    ],
)
def test_a_bad_config_value_is_one_line_naming_the_file_and_key(tmp_path, changes, message):
    path = _config_file(tmp_path, **changes)
    with pytest.raises(ValueError, match=None) as error:
        TranslateConfig.load(path)
    assert message in str(error.value) and str(path) in str(error.value)
    assert "\n" not in str(error.value)


def test_a_config_that_is_not_a_json_object(tmp_path):
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="list.json: a config is a JSON object of settings, found list"):
        TranslateConfig.load(tmp_path / "list.json")
    (tmp_path / "broken.json").write_text('{"epochs": 3,,}')
    with pytest.raises(ValueError, match=r"broken.json: not valid JSON \(.* line 1 column 14\)"):
        TranslateConfig.load(tmp_path / "broken.json")
    with pytest.raises(FileNotFoundError, match="one of the presets: .*tiny"):
        TranslateConfig.load("no_such_preset")


def test_every_preset_validates():
    for name in TranslateConfig.presets():
        assert TranslateConfig.load(name).model in TranslateConfig.MODELS


def test_cli_rejects_a_bad_config_before_writing_anything(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        [
            "translate",
            "train",
            "--config",
            str(_config_file(tmp_path, epochs="ten")),
            "--out",
            str(out),
            "--corpus",
            "sample",
            "--pair",
            "en-fr",
        ]
    )
    assert code == 2 and not out.exists()
    assert "epochs must be an integer" in capsys.readouterr().err


def test_resuming_with_another_config_is_refused_and_changes_nothing(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    tiny = TranslateConfig.load("tiny")
    tiny.save(run_dir / "config.json")
    (run_dir / "run.json").write_text(json.dumps({"corpus": "sample", "pair": "en-fr"}))
    before = {path.name: path.read_bytes() for path in run_dir.iterdir()}
    with pytest.raises(ValueError, match=r"another config \(differs in .*model_args.hidden_dim"):
        app.train(TranslateConfig.load("transformer"), run_dir, corpus="sample", pair="en-fr")
    with pytest.raises(ValueError, match="holds a run on"):
        app.train(tiny, run_dir, corpus="sample", pair="en-de")
    assert {path.name: path.read_bytes() for path in run_dir.iterdir()} == before


def test_init_from_needs_a_trained_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="--init-from .* has no best.keras, source.vocab, target.vocab"):
        app.train(
            TranslateConfig.load("tiny"),
            tmp_path / "new",
            corpus="sample",
            pair="en-fr",
            init_from=tmp_path / "nothing",
        )
    assert not (tmp_path / "new").exists()


def test_inherit_weights_copies_layers_with_the_same_name_and_shapes():
    config = TranslateConfig.load("tiny")
    source = app.APP.build_model(config, {"source": 120, "target": 130})
    same = app.APP.build_model(config, {"source": 120, "target": 130})
    other_target = app.APP.build_model(config, {"source": 120, "target": 140})
    assert sorted(runner.inherit_weights(same, source)) == sorted(
        layer.name for layer in source.layers if layer.weights
    )
    assert all(np.array_equal(a, b) for a, b in zip(same.get_weights(), source.get_weights()))
    copied = runner.inherit_weights(other_target, source)
    by_name = {layer.name: layer for layer in source.layers}
    skipped = [layer for layer in other_target.layers if layer.weights and layer.name not in copied]
    assert copied and skipped, "the source side matches, the target side's vocabulary does not"
    for name in copied:
        assert all(
            np.array_equal(a, b)
            for a, b in zip(other_target.get_layer(name).get_weights(), by_name[name].get_weights())
        )
    for layer in skipped:
        assert [w.shape for w in layer.weights] != [w.shape for w in by_name[layer.name].weights]


def test_the_model_is_built_in_the_configs_dtype_policy_without_a_global_one():
    import keras

    config = TranslateConfig.load("tiny")
    config.mixed_precision = "mixed_bfloat16"
    model = app.APP.build_model(config, {"source": 100, "target": 100})
    assert keras.config.dtype_policy().name == "float32"
    assert {layer.dtype_policy.name for layer in model.layers if layer.weights} == {"mixed_bfloat16"}


def test_a_checkpoint_written_for_other_classes_says_so(tmp_path):
    """A whole .keras archive whose config no longer fits the classes (a run of an older kerasllm) is not
    called damaged: the message says what it is."""
    import zipfile

    model = app.APP.build_model(TranslateConfig.load("tiny"), {"source": 100, "target": 100})
    model.save(tmp_path / "good.keras")
    with zipfile.ZipFile(tmp_path / "good.keras") as source, zipfile.ZipFile(tmp_path / "old.keras", "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                config["config"]["d_model"] = config["config"].pop("hidden_dim")
                data = json.dumps(config).encode()
            target.writestr(item, data)
    with pytest.raises(ValueError, match="old.keras was written by another version of kerasllm .* retrain"):
        runner.load_checkpoint(tmp_path / "old.keras")
    (tmp_path / "cut.keras").write_bytes((tmp_path / "good.keras").read_bytes()[:1000])
    with pytest.raises(ValueError, match="cut.keras is damaged"):
        runner.load_checkpoint(tmp_path / "cut.keras")


def test_ctrl_c_is_one_line_saying_the_run_resumes(monkeypatch, capsys, tmp_path):
    import apps.translate.cli as translate_cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(translate_cli, "_train", interrupted)
    assert main(["translate", "train", "--out", str(tmp_path / "run")]) == 130
    error = capsys.readouterr().err
    assert "interrupted" in error and "resumes" in error and error.count("\n") == 1

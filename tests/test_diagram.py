"""kerasllm.diagram: Mermaid flowcharts read off the Keras graph, checked by parsing the Mermaid text."""

from __future__ import annotations

import json
import re
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops

from kerasllm.diagram import Flow, Inside, Part, diagram_markdown, mermaid_diagram, register_inside
from kerasllm.layers import TransformerDecoderLayer, TransformerEncoderLayer
from kerasllm.models import LSTMSeq2Seq, Transformer

CONFIGS = Path(__file__).resolve().parents[1] / "apps" / "translate" / "configs"
MERMAID_ID = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
NODE = re.compile(r'(\w+)(\(\[|\[)"(.*?)"(\]\)|\])(?::::(\w+))?')
SUBGRAPH = re.compile(r'subgraph (\w+)\["(.*?)"\]')
EDGE = re.compile(r'(\w+) (-->|-\.->|==>)(?:\|"(.*?)"\|)? (\w+)')
LINK_STYLE = re.compile(r"linkStyle ([\d,]+) ")


class Chart:
    """The parts of a flowchart: nodes (id -> label lines), the subgraphs around each node and subgraph,
    subgraph titles, and edges (source, arrow, label, target) in order."""

    def __init__(self, text: str) -> None:
        self.nodes: dict[str, list[str]] = {}
        self.rounded: set[str] = set()
        self.styles: dict[str, str | None] = {}
        self.parents: dict[str, tuple[str, ...]] = {}
        self.titles: dict[str, str] = {}
        self.edges: list[tuple[str, str, str | None, str]] = []
        self.link_styles: list[int] = []
        lines = text.splitlines()
        if lines[0] == "---":
            lines = lines[lines.index("---", 1) + 1 :]
        assert lines[0] == "flowchart TB"
        stack: list[str] = []
        for line in (line.strip() for line in lines[1:]):
            if match := SUBGRAPH.fullmatch(line):
                graph_id, title = match.groups()
                assert graph_id not in self.titles and graph_id not in self.nodes, graph_id
                self.parents[graph_id] = tuple(stack)
                self.titles[graph_id] = title
                stack.append(graph_id)
            elif line == "end":
                stack.pop()
            elif line == "direction TB" or line.startswith(("classDef ", "class ")):
                continue
            elif match := LINK_STYLE.match(line):
                self.link_styles += [int(index) for index in match.group(1).split(",")]
            elif match := EDGE.fullmatch(line):
                self.edges.append(match.groups())
            elif match := NODE.fullmatch(line):
                node_id, opening, label, _, style = match.groups()
                assert node_id not in self.nodes and node_id not in self.titles, node_id
                self.nodes[node_id] = label.split("<br/>")
                self.styles[node_id] = style
                self.parents[node_id] = tuple(stack)
                if opening == "([":
                    self.rounded.add(node_id)
            else:
                raise AssertionError(f"not a flowchart line: {line!r}")
        assert not stack, "a subgraph is not closed"

    def check_valid(self) -> None:
        for identifier in list(self.nodes) + list(self.titles):
            assert MERMAID_ID.fullmatch(identifier) and identifier.lower() != "end", identifier
        for source, _, _, target in self.edges:  # an edge may end at a subgraph: a Keras mask into a model
            assert source in self.nodes and (target in self.nodes or target in self.titles), (source, target)
        assert len(set(self.edges)) == len(self.edges)
        assert all(0 <= index < len(self.edges) for index in self.link_styles)

    def named(self, name: str, within: str | None = None) -> list[str]:
        """The ids of the nodes whose label starts with `name` (inside subgraph `within`)."""
        return [
            node_id
            for node_id, label in self.nodes.items()
            if label[0] == name and (within is None or within in self.parents[node_id])
        ]

    def one(self, name: str, within: str | None = None) -> str:
        (node_id,) = self.named(name, within)
        return node_id

    def titled(self, prefix: str) -> str:
        (graph_id,) = [graph_id for graph_id, title in self.titles.items() if title.startswith(prefix)]
        return graph_id

    def inside(self, graph_id: str) -> list[str]:
        return [node_id for node_id in self.nodes if graph_id in self.parents[node_id]]

    def edges_of(self, arrow: str, label: str | None) -> list[tuple[str, str]]:
        return [(source, target) for source, kind, text, target in self.edges if kind == arrow and text == label]

    def has_edge(self, source: str, target: str) -> bool:
        return any(edge[0] == source and edge[3] == target for edge in self.edges)


def preset_model(preset: str, **overrides) -> keras.Model:
    """A preset's model as apps/translate/app.py's build_model makes it: its model_args, small vocabularies, built
    on a dummy batch."""
    config = json.loads((CONFIGS / f"{preset}.json").read_text())
    model_class = Transformer if config["model"] == "transformer" else LSTMSeq2Seq
    model = model_class(source_vocabulary_size=50, target_vocabulary_size=60, **{**config["model_args"], **overrides})
    dummy = np.ones((1, 4), "int32")
    model((dummy, dummy))
    return model


def assert_every_layer_drawn(chart: Chart, model: keras.Model) -> None:
    """Every layer of the graph has a node named after it, or a subgraph titled with its name when it is drawn
    expanded (nested models, registered layers: repeats are titled "first … last × N")."""
    for operation in model.layers if isinstance(model, keras.Sequential) else model.operations:
        if not isinstance(operation, keras.layers.Layer) or isinstance(operation, keras.layers.InputLayer):
            continue
        if chart.named(operation.name) or chart.named(f"{operation.name} · call 2"):
            continue
        titles = [title for title in chart.titles.values() if operation.name in re.split(r" · | … | × ", title)]
        assert titles, f"{operation.name} is not drawn"
        if isinstance(operation, keras.Model):
            assert_every_layer_drawn(chart, operation)


@pytest.fixture(scope="module")
def tiny_transformer() -> keras.Model:
    return preset_model("tiny")


def test_tiny_transformer_expanded(tiny_transformer):
    model = tiny_transformer
    text = mermaid_diagram(model, title="Transformer")
    chart = Chart(text)
    chart.check_valid()
    assert text.startswith('---\ntitle: "Transformer"\n---\nflowchart TB\n')
    assert text == mermaid_diagram(model, title="Transformer")
    assert diagram_markdown(model, title="Transformer") == f"```mermaid\n{text}```\n"
    width = model.get_layer("encoder").output.shape[-1]
    assert_every_layer_drawn(chart, model)

    # Inputs and output are rounded, with B / S / T shapes.
    encoder_tokens, decoder_tokens = chart.one("encoder_tokens"), chart.one("decoder_tokens")
    output = chart.one("output")
    assert chart.rounded == {encoder_tokens, decoder_tokens, output}
    assert chart.nodes[encoder_tokens][1] == "[B, S] int32" and chart.nodes[decoder_tokens][1] == "[B, T] int32"
    assert chart.nodes[output][1] == "[B, T, 60]"

    # The backbones are subgraphs; in each, the identical layers are drawn once, with their inside.
    encoder, decoder = chart.titled("encoder · TransformerEncoder"), chart.titled("decoder · TransformerDecoder")
    assert chart.parents[encoder] == chart.parents[decoder] == ()
    encoder_layers = chart.titled("encoder_layer_0 … encoder_layer_1 × 2 · TransformerEncoderLayer")
    decoder_layers = chart.titled("decoder_layer_0 … decoder_layer_1 × 2 · TransformerDecoderLayer")
    assert chart.parents[encoder_layers] == (encoder,) and chart.parents[decoder_layers] == (decoder,)
    encoder_parts, decoder_parts = chart.inside(encoder_layers), chart.inside(decoder_layers)
    assert [chart.nodes[node_id][0] for node_id in encoder_parts] == [
        "multi-head self-attention",
        "add & norm",
        "feed-forward",
        "add & norm",
    ]
    assert [chart.nodes[node_id][0] for node_id in decoder_parts] == [
        "masked multi-head self-attention",
        "add & norm",
        "multi-head cross-attention",
        "add & norm",
        "feed-forward",
        "add & norm",
    ]
    assert chart.nodes[encoder_parts[-1]][-1] == f"[B, S, {width}]"
    assert chart.nodes[decoder_parts[-1]][-1] == f"[B, T, {width}]"
    source_dropout = chart.one("embedding_dropout", within=encoder)
    target_dropout = chart.one("embedding_dropout", within=decoder)
    assert chart.has_edge(encoder_tokens, chart.one("embedding", within=encoder))
    assert chart.has_edge(decoder_tokens, chart.one("embedding", within=decoder))
    assert chart.has_edge(source_dropout, encoder_parts[0]) and chart.has_edge(target_dropout, decoder_parts[0])
    token_embedding = chart.one("token_embedding")
    assert chart.nodes[token_embedding][-1] == "tied to decoder/embedding"
    assert chart.has_edge(decoder_parts[-1], token_embedding) and chart.has_edge(token_embedding, output)

    # Residual edges are dotted, each from a block's input to its add & norm: 2 per encoder layer, 3 per decoder.
    encoder_adds, decoder_adds = encoder_parts[1::2], decoder_parts[1::2]
    residuals = chart.edges_of("-.->", "residual")
    assert residuals == [
        (source_dropout, encoder_adds[0]),
        (encoder_adds[0], encoder_adds[1]),
        (target_dropout, decoder_adds[0]),
        (decoder_adds[0], decoder_adds[1]),
        (decoder_adds[1], decoder_adds[2]),
    ]
    assert all(chart.edges.index((s, "-.->", "residual", t)) in chart.link_styles for s, t in residuals)
    # The memory is a thick edge from the encoder's output into cross-attention (across the two subgraphs).
    cross_attention = decoder_parts[2]
    assert chart.edges_of("==>", "memory") == [(encoder_parts[-1], cross_attention)]
    # Padding masks are dashed edges from `not_equal` calls: the source's into the encoder's self-attention and
    # into cross-attention, the target's into the decoder's self-attention.
    mask_sources = {}
    for source, target in chart.edges_of("-.->", "mask"):
        assert chart.nodes[source][0] == "not_equal(·, 0)" and chart.styles[source] == "op"
        mask_sources.setdefault(target, set()).add(chart.nodes[source][1])
    assert mask_sources[encoder_parts[0]] == {"[B, S]"} and mask_sources[cross_attention] == {"[B, S]"}
    assert mask_sources[decoder_parts[0]] == {"[B, T]"}


def test_tiny_transformer_flat(tiny_transformer):
    model = tiny_transformer
    chart = Chart(mermaid_diagram(model, expand=False))
    chart.check_valid()
    assert not chart.titles
    assert_every_layer_drawn(chart, model)
    width = model.get_layer("encoder").output.shape[-1]
    encoder, decoder = chart.one("encoder"), chart.one("decoder")
    assert chart.nodes[encoder][1:] == ["TransformerEncoder", f"[B, S, {width}]"]
    assert chart.nodes[decoder][1:] == ["TransformerDecoder", f"[B, T, {width}]"]
    # The decoder's inputs are named after the model inputs they feed.
    assert chart.edges_of("==>", "memory") == [(encoder, decoder)]
    assert chart.edges_of("-->", "token_ids") == [(chart.one("decoder_tokens"), decoder)]
    assert chart.edges_of("-.->", "mask")
    assert all(target == decoder for _, target in chart.edges_of("-.->", "mask"))
    assert not chart.edges_of("-.->", "residual")


def test_pre_norm_transformer_draws_norm_before_each_sublayer():
    model = preset_model("tiny", normalize_first=True)
    chart = Chart(mermaid_diagram(model))
    chart.check_valid()
    encoder = chart.titled("encoder · ")
    parts = chart.inside(chart.titled("encoder_layer_0 … encoder_layer_1 × 2"))
    assert [chart.nodes[node_id][0] for node_id in parts] == [
        "layer norm",
        "multi-head self-attention",
        "add",
        "layer norm",
        "feed-forward",
        "add",
    ]
    # The residual skips the norm: from the block's input (the dropout, then the first add) to its add.
    dropout = chart.one("embedding_dropout", within=encoder)
    assert chart.edges_of("-.->", "residual")[:2] == [(dropout, parts[2]), (parts[2], parts[5])]
    assert chart.has_edge(dropout, parts[0]) and chart.has_edge(parts[0], parts[1])
    # A pre-norm stack ends with its own LayerNorm, which the memory then comes from.
    (encoder_norm,) = [
        node_id for node_id in chart.inside(encoder) if chart.nodes[node_id][1:2] == ["LayerNormalization"]
    ]
    assert chart.has_edge(parts[5], encoder_norm)
    assert [source for source, _ in chart.edges_of("==>", "memory")] == [encoder_norm]


def test_tiny_lstm_attention():
    model = preset_model("tiny_lstm_attention")
    text = mermaid_diagram(model)
    assert text == mermaid_diagram(model)
    chart = Chart(text)
    chart.check_valid()
    assert_every_layer_drawn(chart, model)
    # One Dropout serves the embeddings and the decoder output: a node per call keeps the streams apart.
    assert chart.named("dropout") and chart.named("dropout · call 2")
    decoder = chart.titled("decoder · LSTMDecoder")
    lstm, attention, combine = chart.inside(decoder)
    assert chart.nodes[lstm] == ["LSTM", "1 layer of 128 units"]
    assert chart.nodes[attention] == ["Luong attention", "general score"]
    assert chart.nodes[combine] == ["tanh(W_c [c; h])", "[B, T, 128]"]
    assert chart.has_edge(chart.one("dropout"), lstm) and chart.has_edge(lstm, attention)
    assert chart.edges_of("-->", "context") == [(attention, combine)] and chart.has_edge(lstm, combine)
    # The encoder's output is the memory attention reads, under the source padding mask.
    ((memory_source, _),) = chart.edges_of("==>", "memory")
    assert chart.edges_of("==>", "memory") == [(memory_source, attention)]
    assert chart.nodes[memory_source][-1].startswith("[B, S, 256]")
    source_mask = chart.one("not_equal(·, 0)")
    assert (source_mask, attention) in chart.edges_of("-.->", "mask")
    assert sorted(chart.edges_of("-->", "initial state")) == sorted(
        [(chart.one("bridge_hidden"), lstm), (chart.one("bridge_cell"), lstm)]
    )
    assert chart.has_edge(combine, chart.one("dropout · call 2"))
    assert chart.has_edge(chart.one("output_projection"), chart.one("output"))


def nested_classifier() -> keras.Model:
    """A text classifier whose backbone is a functional model with a functional block inside it."""
    hidden = keras.Input((None, 16), name="hidden")
    block = keras.Model(
        hidden,
        keras.layers.Dense(16, name="block_dense_1")(
            keras.layers.Dense(32, activation="relu", name="block_dense_0")(hidden)
        ),
        name="block",
    )

    token_ids = keras.Input((None,), dtype="int32", name="token_ids")
    padding_mask = keras.Input((None,), dtype="bool", name="padding_mask")
    x = keras.layers.Embedding(100, 16, name="token_embedding")(token_ids)
    x = TransformerEncoderLayer(num_heads=2, intermediate_dim=32, name="encoder_layer")(x, padding_mask=padding_mask)
    x = TransformerDecoderLayer(num_heads=2, intermediate_dim=32, name="gpt_block")(x, padding_mask=padding_mask)
    x = block(x)
    backbone = keras.Model(
        {"token_ids": token_ids, "padding_mask": padding_mask},
        {"sequence_output": x, "padding_mask": padding_mask},
        name="backbone",
    )

    inputs = keras.Input((None,), dtype="int32", name="token_ids")
    features = backbone({"token_ids": inputs, "padding_mask": ops.not_equal(inputs, 0)})
    pooled = keras.layers.GlobalAveragePooling1D(name="pooling")(
        features["sequence_output"], mask=features["padding_mask"]
    )
    head = keras.Sequential(
        [keras.layers.Dense(8, name="head_dense_0"), keras.layers.Dense(3, name="head_dense_1")], name="head"
    )
    return keras.Model(inputs, head(pooled), name="classifier")


def test_nested_functional_models_become_subgraphs():
    model = nested_classifier()
    text = mermaid_diagram(model)
    assert text == mermaid_diagram(model)
    chart = Chart(text)
    chart.check_valid()
    assert_every_layer_drawn(chart, model)
    backbone, head = chart.titled("backbone · Functional"), chart.titled("head · Sequential")
    block = chart.titled("block · Functional")
    encoder, gpt_block = chart.titled("encoder_layer · TransformerEncoderLayer"), chart.titled("gpt_block · ")
    assert chart.parents[backbone] == chart.parents[head] == ()
    assert chart.parents[block] == chart.parents[encoder] == chart.parents[gpt_block] == (backbone,)
    assert chart.parents[chart.one("block_dense_0")] == (backbone, block)
    assert chart.parents[chart.one("token_embedding")] == (backbone,)
    assert chart.parents[chart.one("head_dense_1")] == (head,)
    # The inner models' inputs are not drawn: the outer producers feed the inner layers directly.
    inputs, mask = chart.one("token_ids"), chart.one("not_equal(·, 0)")
    assert len(chart.rounded) == 2 and inputs in chart.rounded
    assert chart.has_edge(inputs, chart.one("token_embedding"))
    encoder_parts, gpt_parts = chart.inside(encoder), chart.inside(gpt_block)
    # A decoder layer called without a memory is a GPT block: no cross-attention, no memory edge.
    assert [chart.nodes[node_id][0] for node_id in gpt_parts] == [
        "masked multi-head self-attention",
        "add & norm",
        "feed-forward",
        "add & norm",
    ]
    assert not chart.edges_of("==>", "memory")
    assert sorted(chart.edges_of("-.->", "mask")) == sorted(
        [(mask, encoder_parts[0]), (mask, gpt_parts[0]), (mask, chart.one("pooling"))]
    )
    assert len(chart.edges_of("-.->", "residual")) == 4
    assert chart.has_edge(encoder_parts[-1], gpt_parts[0])
    assert chart.has_edge(gpt_parts[-1], chart.one("block_dense_0"))
    assert chart.has_edge(chart.one("block_dense_1"), chart.one("pooling"))
    assert chart.has_edge(chart.one("pooling"), chart.one("head_dense_0"))
    assert chart.nodes[chart.one("head_dense_1")][-1] == "[B, 3]"
    assert chart.has_edge(chart.one("head_dense_1"), chart.one("output"))

    flat = Chart(mermaid_diagram(model, expand=False))
    flat.check_valid()
    assert not flat.titles
    assert flat.nodes[flat.one("backbone")][1:] == ["Functional", "[B, S], [B, S, 16]"]
    assert flat.edges_of("-.->", "mask") == [
        (flat.one("not_equal(·, 0)"), flat.one("backbone")),
        (flat.one("backbone"), flat.one("pooling")),
    ]


def test_ids_are_sanitized_and_dict_outputs_are_named():
    inputs = keras.Input((4,), name="in.put")
    end = keras.layers.Dense(2, name="end")(inputs)
    other = keras.layers.Dense(2, name="x-proj")(inputs)
    chart = Chart(mermaid_diagram(keras.Model(inputs, {"end": end, "proj": other})))
    chart.check_valid()  # ids are Mermaid identifiers: "in.put" and "x-proj" sanitized, "end" not a keyword
    layer, output = chart.named("end")
    assert chart.nodes[layer][1] == "Dense" and chart.nodes[chart.one("x-proj")][1] == "Dense"
    assert chart.has_edge(layer, output) and chart.has_edge(chart.one("x-proj"), chart.one("proj"))
    assert {chart.nodes[node_id][0] for node_id in chart.rounded} == {"in.put", "end", "proj"}


class Scale(keras.layers.Layer):
    def call(self, inputs, scale=None):
        return inputs * scale


def test_registered_inside_is_drawn_and_checked():
    inputs = keras.Input((4,), name="features")
    scale = keras.Input((4,), name="scale")
    model = keras.Model([inputs, scale], Scale(name="scale_layer")(inputs, scale=scale))

    @register_inside(Scale)
    def _scale(layer, arguments):
        return Inside(
            parts=(Part("multiply", "multiply"),),
            flows=(Flow("inputs", "multiply"), Flow("scale", "multiply", label="by")),
            output="multiply",
        )

    chart = Chart(mermaid_diagram(model))
    chart.check_valid()
    multiply = chart.inside(chart.titled("scale_layer · Scale"))[0]
    assert chart.nodes[multiply] == ["multiply", "[B, 4]"]
    assert chart.edges_of("-->", "by") == [(chart.one("scale"), multiply)]

    @register_inside(Scale)
    def _broken(layer, arguments):
        return Inside(parts=(Part("multiply", "multiply"),), flows=(Flow("factor", "multiply"),), output="multiply")

    with pytest.raises(ValueError, match="'factor'"):
        mermaid_diagram(model)


def test_subclassed_model_is_refused():
    class Opaque(keras.Model):
        def call(self, inputs):
            return inputs

    with pytest.raises(ValueError, match="no functional graph"):
        mermaid_diagram(Opaque())

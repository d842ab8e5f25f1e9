"""Mermaid flowcharts of Keras models, read off their functional graph (GitHub renders them in Markdown).

One node per layer call, labelled with the layer's name, class and output shape; the model's inputs and outputs as
rounded nodes; keras.ops calls of a functional model (the `not_equal` that makes a padding mask) as small nodes.
Shapes write a `None` axis as B on axis 0, and elsewhere as the length it runs over: T for an input whose name says
"decoder" or "target", S for any other input, and for a computed tensor the symbol of the same axis of its first
input that has one. Edges go from producer to consumer; an edge that carries a mask (an argument named `*mask*`,
or a bool tensor) is dashed and labelled "mask", one that feeds a memory (an argument named `*memory*`) is thick
and labelled "memory".

With `expand`, nested functional models (a backbone inside a task model) become subgraphs, the Keras masks Keras
passes along with their inputs drawn as edges into the subgraph, and layers with a registered inside
(`register_inside`; kerasllm's Transformer and LSTM decoder layers are registered here) are drawn as their
sub-layers, residual connections included. A run of identical such layers, each on the previous one's output with
the same other arguments (the N stacked layers of an encoder), is drawn once and titled "first … last × N", as the
paper's Figure 1 draws "N×": N copies of the same inside make a chart N times as tall and no clearer.

A layer that is called more than once (one Dropout on the source and the target embeddings) gets a node per call:
drawing it once would join the two streams in the picture where the model keeps them apart. A layer that reads
another's weights (a tied output embedding) says "tied to" that layer.

The graph is read the way `keras.utils.plot_model` reads it: `model.inputs` / `model.outputs`, each tensor's
`_keras_history` (the call that produced it, `_producer` below is the one place that touches it) and that call's
`Node.arguments`. Models therefore need no change to be drawn.

Example:

```python
model = kerasllm.models.Transformer(source_vocabulary_size=100, target_vocabulary_size=100,
                                    num_encoder_layers=2, num_decoder_layers=2)
print(kerasllm.diagram.diagram_markdown(model, title="Transformer"))
```
"""

from __future__ import annotations

import collections
import dataclasses
import heapq
import inspect
import itertools
import re
from collections.abc import Callable
from typing import Any

import keras

from kerasllm.layers import LSTMDecoder, TransformerDecoderLayer, TransformerEncoderLayer

# Edge kinds: how each is drawn, and the colour `linkStyle` gives it.
_ARROWS = {"data": "-->", "mask": "-.->", "residual": "-.->", "memory": "==>"}
_EDGE_COLOURS = {"mask": "stroke:#9e9e9e", "residual": "stroke:#2e7d32", "memory": "stroke:#1565c0"}
_KIND_LABELS = {"mask": "mask", "residual": "residual", "memory": "memory"}
# Node styles (Mermaid classDef), in the order they are emitted; the colours of the paper's Figure 1.
_STYLES = {
    "io": "fill:#e8eaf6,stroke:#3949ab",
    "op": "fill:#f5f5f5,stroke:#9e9e9e,font-size:11px",
    "attention": "fill:#fde0c5,stroke:#e07b00",
    "feedforward": "fill:#d6ecfa,stroke:#1f77b4",
    "norm": "fill:#fff3b0,stroke:#b59b00",
    "recurrent": "fill:#e3f1df,stroke:#2e7d32",
    "block": "fill:#fafafa,stroke:#bdbdbd",  # an expanded layer (a subgraph)
    "model": "fill:#f7f9ff,stroke:#3949ab,stroke-dasharray:5 3",  # a nested model (a subgraph)
}
# Words Mermaid reads as syntax where a node id is expected.
_RESERVED_IDS = {
    "end",
    "graph",
    "subgraph",
    "flowchart",
    "direction",
    "style",
    "class",
    "classdef",
    "click",
    "linkstyle",
    "default",
}


@dataclasses.dataclass(frozen=True)
class Part:
    """One box inside an expanded layer.

    Args:
        key: str, the part's name within the layer (unique there, and not a name of the layer's call arguments).
        label: str, the text; `"\\n"` breaks a line.
        style: str, one of the node styles (`"attention"`, `"feedforward"`, `"norm"`, `"recurrent"`), or `None`.
    """

    key: str
    label: str
    style: str | None = None


@dataclasses.dataclass(frozen=True)
class Flow:
    """An edge inside an expanded layer.

    Args:
        source: str, a part key, or the name of an argument of the layer's `call` (the edge then starts at whatever
            produced that argument; it is left out when the call did not pass it).
        target: str, a part key.
        kind: str, `"data"`, `"mask"` (dashed), `"residual"` (dotted) or `"memory"` (thick).
        label: str, the edge label; `None` for the kind's own ("mask", "residual", "memory") or none.
    """

    source: str
    target: str
    kind: str = "data"
    label: str | None = None


@dataclasses.dataclass(frozen=True)
class Inside:
    """What an expanded layer is drawn as: its parts, the flows between them and into them, and the part whose
    output is the layer's output."""

    parts: tuple[Part, ...]
    flows: tuple[Flow, ...]
    output: str


# A describer gets the layer and the names of the call arguments that were passed a tensor.
Describer = Callable[[keras.layers.Layer, frozenset], Inside]
_INSIDES: dict[type, Describer] = {}


def register_inside(layer_class: type) -> Callable[[Describer], Describer]:
    """Register how `layer_class` (and its subclasses) is drawn when a diagram is expanded.

    Example:

    ```python
    @kerasllm.diagram.register_inside(MyBlock)
    def _my_block(layer, arguments):
        return Inside(parts=(Part("dense", "dense"),), flows=(Flow("inputs", "dense"),), output="dense")
    ```
    """

    def register(describe: Describer) -> Describer:
        _INSIDES[layer_class] = describe
        return describe

    return register


def _describer(operation: Any) -> Describer | None:
    for cls in type(operation).__mro__:
        if cls in _INSIDES:
            return _INSIDES[cls]
    return None


def _residual_block(
    name: str, sublayer: Part, stream: str, normalize_first: bool, side_flows: tuple[Flow, ...] = ()
) -> tuple[list[Part], list[Flow], str]:
    """A sub-layer in its residual connection: LayerNorm(x + Sublayer(x)), or x + Sublayer(LayerNorm(x)) pre-norm.

    Returns the parts, the flows and the key of the part that outputs the block.
    """
    add = Part(f"{name}_add", "add" if normalize_first else "add & norm", "norm")
    parts, flows, x = [], [], stream
    if normalize_first:
        norm = Part(f"{name}_norm", "layer norm", "norm")
        parts.append(norm)
        flows.append(Flow(stream, norm.key))
        x = norm.key
    parts += [sublayer, add]
    flows += [Flow(x, sublayer.key), *side_flows, Flow(sublayer.key, add.key), Flow(stream, add.key, "residual")]
    return parts, flows, add.key


def _activation_name(activation: Any) -> str:
    return activation if isinstance(activation, str) else type(activation).__name__


def _feedforward_part(layer: Any) -> Part:
    return Part(
        "feedforward",
        f"feed-forward\n{layer.intermediate_dim} inner, {_activation_name(layer.activation)}",
        "feedforward",
    )


@register_inside(TransformerEncoderLayer)
def _transformer_encoder_layer(layer: Any, arguments: frozenset) -> Inside:
    attention = Part("self_attention", f"multi-head self-attention\n{layer.num_heads} heads", "attention")
    parts, flows, x = _residual_block(
        "self_attention", attention, "inputs", layer.normalize_first, (Flow("padding_mask", attention.key, "mask"),)
    )
    more_parts, more_flows, x = _residual_block("feedforward", _feedforward_part(layer), x, layer.normalize_first)
    return Inside(tuple(parts + more_parts), tuple(flows + more_flows), x)


@register_inside(TransformerDecoderLayer)
def _transformer_decoder_layer(layer: Any, arguments: frozenset) -> Inside:
    attention = Part(
        "self_attention", f"masked multi-head self-attention\n{layer.num_heads} heads, causal", "attention"
    )
    parts, flows, x = _residual_block(
        "self_attention", attention, "inputs", layer.normalize_first, (Flow("padding_mask", attention.key, "mask"),)
    )
    blocks = []
    if "memory" in arguments:  # a decoder called without a memory (decoder-only) has no cross-attention step
        cross = Part("cross_attention", f"multi-head cross-attention\n{layer.num_heads} heads", "attention")
        blocks.append((cross, (Flow("memory", cross.key, "memory"), Flow("memory_padding_mask", cross.key, "mask"))))
    blocks.append((_feedforward_part(layer), ()))
    for sublayer, side_flows in blocks:
        more_parts, more_flows, x = _residual_block(sublayer.key, sublayer, x, layer.normalize_first, side_flows)
        parts += more_parts
        flows += more_flows
    return Inside(tuple(parts), tuple(flows), x)


@register_inside(LSTMDecoder)
def _lstm_decoder(layer: Any, arguments: frozenset) -> Inside:
    layers = "1 layer" if layer.num_layers == 1 else f"{layer.num_layers} layers"
    lstm = Part("lstm", f"LSTM\n{layers} of {layer.units} units", "recurrent")
    states = (
        Flow("initial_hidden", lstm.key, label="initial state"),
        Flow("initial_cell", lstm.key, label="initial state"),
    )
    if layer.attention_type is None:
        return Inside((lstm,), (Flow("inputs", lstm.key), *states), lstm.key)
    memory = (Flow("memory", "attention", "memory"), Flow("memory_padding_mask", "attention", "mask"))
    combine = Part("combine", "tanh(W_c [c; h])", "feedforward")
    if layer.attention_type == "bahdanau":  # scored with the previous state, its context feeds the LSTM
        attention = Part("attention", "Bahdanau attention\nadditive score", "attention")
        flows = (
            Flow("inputs", lstm.key),
            *states,
            *memory,
            Flow(attention.key, lstm.key, label="context"),
            Flow(lstm.key, attention.key, label="previous state"),
            Flow(lstm.key, combine.key),
            Flow(attention.key, combine.key, label="context"),
        )
        return Inside((attention, lstm, combine), flows, combine.key)
    score = layer.attention_type.removeprefix("luong_")
    attention = Part("attention", f"Luong attention\n{score} score", "attention")
    flows = (
        Flow("inputs", lstm.key),
        *states,
        Flow(lstm.key, attention.key),
        *memory,
        Flow(attention.key, combine.key, label="context"),
        Flow(lstm.key, combine.key),
    )
    return Inside((lstm, attention, combine), flows, combine.key)


def _producer(tensor: Any) -> Any:
    """The `Node` (operation call) that produced a KerasTensor."""
    operation, node_index, _ = tensor._keras_history
    return operation._inbound_nodes[node_index]


def _is_tensor(value: Any) -> bool:
    return isinstance(value, keras.KerasTensor)


def _tensors(value: Any) -> list[Any]:
    """The KerasTensors in an argument (a tensor, or a structure holding tensors and other values)."""
    return [item for item in keras.tree.flatten(value) if _is_tensor(item)]


def _is_graph_model(operation: Any) -> bool:
    """A functional or Sequential model, whose graph can be drawn (a subclassed model has no `inputs`)."""
    if not isinstance(operation, keras.Model):
        return False
    try:
        inputs, outputs = operation.inputs, operation.outputs
    except (AttributeError, ValueError):
        return False
    return bool(inputs) and bool(outputs) and all(_is_tensor(t) for t in inputs + outputs)


def _graph_nodes(inputs: list[Any], outputs: list[Any], known: dict[int, str]) -> tuple[list[Any], dict[int, list]]:
    """The calls that compute `outputs` from `inputs` (or from the tensors in `known`), producers first, and the
    calls that consume each tensor (by id).

    Among the orders that put producers first, the one that follows the inputs in order: the branch of the first
    input (a seq2seq model's source) is declared, and so laid out, before the second's.
    """
    found, seen = [], set()
    stack = [(tensor, False) for tensor in reversed(outputs)]
    while stack:
        tensor, expanded = stack.pop()
        if id(tensor) in known:
            continue
        node = _producer(tensor)
        if expanded:
            if id(node) not in seen:
                seen.add(id(node))
                found.append(node)
        elif id(node) not in seen:
            stack.append((tensor, True))
            stack.extend((t, False) for t in reversed(node.arguments.keras_tensors))
    consumers: dict[int, list[Any]] = collections.defaultdict(list)
    for node in found:
        for tensor in node.arguments.keras_tensors:
            if node not in consumers[id(tensor)]:
                consumers[id(tensor)].append(node)
    # Rank the calls by a depth-first walk forward from the inputs; calls no input reaches rank last.
    seeds = []
    for tensor in inputs:
        node = _producer(tensor)
        seeds += [node] if id(node) in seen else consumers[id(tensor)]
    rank: dict[int, int] = {}
    pending = list(reversed(seeds))
    while pending:
        node = pending.pop()
        if id(node) in rank:
            continue
        rank[id(node)] = len(rank)
        for tensor in reversed(node.outputs):
            pending += reversed(consumers[id(tensor)])
    for node in found:
        rank.setdefault(id(node), len(rank))
    # Kahn's algorithm, taking the lowest-ranked ready call first.
    waiting = {id(node): sum(id(t) not in known for t in node.arguments.keras_tensors) for node in found}
    ready = [(rank[id(node)], node) for node in found if not waiting[id(node)]]
    heapq.heapify(ready)
    order = []
    while ready:
        _, node = heapq.heappop(ready)
        order.append(node)
        for tensor in node.outputs:
            for consumer in consumers[id(tensor)]:
                waiting[id(consumer)] -= sum(t is tensor for t in consumer.arguments.keras_tensors)
                if not waiting[id(consumer)]:
                    heapq.heappush(ready, (rank[id(consumer)], consumer))
    return order, consumers


def _bound_arguments(node: Any) -> list[tuple[str, Any]]:
    """The call's arguments as `(parameter name, value)` pairs in signature order."""
    args, kwargs = node.arguments.args, node.arguments.kwargs
    try:
        signature = inspect.signature(node.operation.call)
        bound = signature.bind(*args, **kwargs).arguments
    except (TypeError, ValueError):
        return [(f"arg{index}", value) for index, value in enumerate(args)] + list(kwargs.items())
    pairs = []
    for name, value in bound.items():
        kind = signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            pairs += [(f"{name}{index}", item) for index, item in enumerate(value)]
        elif kind is inspect.Parameter.VAR_KEYWORD:
            pairs += list(value.items())
        else:
            pairs.append((name, value))
    return pairs


def _model_inputs(node: Any) -> list[tuple[Any, Any]]:
    """A model call's `(model input, tensor passed)` pairs: a model takes its inputs as one structure, its first
    argument, flattened as `model.inputs` is."""
    return list(zip(node.operation.inputs, _tensors(_bound_arguments(node)[0][1])))


def _sanitize(name: str) -> str:
    text = re.sub(r"[^0-9A-Za-z_]", "_", name).strip("_") or "node"
    if not text[0].isalpha() or text.lower() in _RESERVED_IDS:
        text = f"n_{text}"
    return text


def _label(lines: list[str]) -> str:
    escaped = [line.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;") for line in lines]
    return "<br/>".join(escaped)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _value_text(value: Any) -> str:
    if _is_tensor(value):
        return "·"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value_text(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {_value_text(item)}" for key, item in value.items()) + "}"
    return repr(value)


def _edge_kind(parameter: str, tensor: Any, primary: bool, is_layer: bool) -> tuple[str, str | None]:
    if "mask" in parameter or tensor.dtype == "bool":
        return "mask", "mask"
    if "memory" in parameter:
        return "memory", "memory"
    # The first argument is the layer's main stream; name the others (initial states, keys, ...).
    return "data", (parameter if is_layer and not primary else None)


def _config_without_name(layer: Any) -> dict | None:
    try:
        config = dict(layer.get_config())
    except NotImplementedError:
        return None
    config.pop("name", None)
    return config


def _same_call(previous: Any, node: Any) -> bool:
    """Whether `node` repeats `previous` on its output: the same class and config, the same other arguments."""
    layer, other = previous.operation, node.operation
    if type(layer) is not type(other) or layer is other or len(previous.outputs) != 1:
        return False
    config = _config_without_name(layer)
    if config is None or config != _config_without_name(other):
        return False
    before, after = _bound_arguments(previous), _bound_arguments(node)
    if [name for name, _ in before] != [name for name, _ in after] or not after:
        return False
    if after[0][1] is not previous.outputs[0]:
        return False
    for (_, a), (_, b) in zip(before[1:], after[1:]):
        flat_a, flat_b = keras.tree.flatten(a), keras.tree.flatten(b)
        if len(flat_a) != len(flat_b):
            return False
        for x, y in zip(flat_a, flat_b):
            if x is not y and (_is_tensor(x) or _is_tensor(y) or x != y):
                return False
    return True


class _Chart:
    """Accumulates node declarations (nested in subgraphs) and edges, then writes the flowchart."""

    def __init__(self, expand: bool) -> None:
        self.expand = expand
        self.lines: list[str] = []
        self.edges: list[tuple[str, str, str, str | None]] = []
        self.ids: set[str] = set()
        self.symbols: dict[int, tuple[str, ...]] = {}  # id(KerasTensor) -> one symbol per axis
        self.weight_owners: dict[int, str] = {}  # id(variable) -> name of the first drawn layer holding it
        self.calls: collections.Counter = collections.Counter()  # id(layer) -> calls drawn so far
        self.styles: set[str] = set()
        self.subgraphs: list[tuple[str, str]] = []  # (id, style): Mermaid styles a subgraph with a `class` line

    # === Output ===

    def new_id(self, name: str) -> str:
        base = candidate = _sanitize(name)
        count = 2
        while candidate in self.ids:
            candidate, count = f"{base}_{count}", count + 1
        self.ids.add(candidate)
        return candidate

    def declare(self, depth: int, node_id: str, lines: list[str], shape: str = "box", style: str | None = None) -> None:
        opening, closing = {"box": ("[", "]"), "round": ("([", "])")}[shape]
        suffix = ""
        if style is not None:
            self.styles.add(style)
            suffix = f":::{style}"
        self.lines.append(f'{"    " * depth}{node_id}{opening}"{_label(lines)}"{closing}{suffix}')

    def subgraph(self, depth: int, graph_id: str, title: str, style: str) -> None:
        self.styles.add(style)
        self.subgraphs.append((graph_id, style))
        self.lines.append(f'{"    " * depth}subgraph {graph_id}["{_label([title])}"]')
        self.lines.append(f"{'    ' * (depth + 1)}direction TB")

    def edge(self, source: str, target: str, kind: str = "data", label: str | None = None) -> None:
        edge = (source, target, kind, label)
        if edge not in self.edges:
            self.edges.append(edge)

    def text(self, title: str | None) -> str:
        out = []
        if title is not None:
            out += ["---", 'title: "' + title.replace("\\", "\\\\").replace('"', '\\"') + '"', "---"]
        out.append("flowchart TB")
        out += self.lines
        for source, target, kind, label in self.edges:
            text = "" if label is None else f'|"{_label([label])}"|'
            out.append(f"    {source} {_ARROWS[kind]}{text} {target}")
        out += [f"    classDef {style} {_STYLES[style]}" for style in _STYLES if style in self.styles]
        for style in _STYLES:
            graph_ids = [graph_id for graph_id, graph_style in self.subgraphs if graph_style == style]
            if graph_ids:
                out.append(f"    class {','.join(graph_ids)} {style}")
        for kind, colour in _EDGE_COLOURS.items():
            indices = [str(index) for index, edge in enumerate(self.edges) if edge[2] == kind]
            if indices:
                out.append(f"    linkStyle {','.join(indices)} {colour}")
        return "\n".join(out) + "\n"

    # === Shapes ===

    def input_symbols(self, tensor: Any) -> None:
        # Decoder-side inputs run over the target length T; every other length axis is the source's S.
        length = "T" if re.search("decoder|target", tensor.name) else "S"
        self.symbols[id(tensor)] = tuple(
            str(dim) if dim is not None else ("B" if axis == 0 else length) for axis, dim in enumerate(tensor.shape)
        )

    def derive_symbols(self, tensor: Any, sources: list[Any]) -> None:
        """A `None` axis takes the symbol of the same axis of the first input that has one (B on axis 0)."""
        symbols = []
        for axis, dim in enumerate(tensor.shape):
            if dim is not None:
                symbols.append(str(dim))
                continue
            symbol = "B" if axis == 0 else "?"
            if axis:
                for source in sources:
                    known = self.symbols.get(id(source), ())
                    if len(known) > axis and source.shape[axis] is None:
                        symbol = known[axis]
                        break
            symbols.append(symbol)
        self.symbols[id(tensor)] = tuple(symbols)

    def node_symbols(self, node: Any) -> None:
        """The symbols of a call's outputs; a model's are followed through its graph (its memory input must not
        give its output the source length)."""
        model = node.operation
        if not _is_graph_model(model):
            for tensor in node.outputs:
                self.derive_symbols(tensor, node.arguments.keras_tensors)
            return
        for inner, outer in _model_inputs(node):
            self.symbols[id(inner)] = self.symbols.get(id(outer), ())
        inner_nodes, _ = _graph_nodes(model.inputs, model.outputs, {id(inner): "" for inner in model.inputs})
        for inner_node in inner_nodes:
            self.node_symbols(inner_node)
        for outer_tensor, inner_tensor in zip(node.outputs, model.outputs):
            self.symbols[id(outer_tensor)] = self.symbols.get(id(inner_tensor), ())

    def shape_text(self, tensors: list[Any]) -> str:
        shapes = ["[" + ", ".join(self.symbols.get(id(t), ())) + "]" for t in tensors]
        groups = [(shape, len(list(run))) for shape, run in itertools.groupby(shapes)]
        return ", ".join(shape if count == 1 else f"{count} × {shape}" for shape, count in groups)

    # === Graph ===

    def model(self, model: keras.Model) -> None:
        known: dict[int, str] = {}
        self.scope(model.inputs, model.outputs, known, "", "", 1)
        for path, tensor in keras.tree.flatten_with_path(model.output):
            # A dict output is named by its keys, a list output by its indices.
            keys = [str(key) for key in path]
            name = "_".join(keys) if not all(isinstance(key, int) for key in path) else "_".join(["output", *keys])
            node_id = self.new_id(name)
            self.declare(1, node_id, [name, self.shape_text([tensor])], "round", "io")
            self.edge(known[id(tensor)], node_id)

    def scope(
        self, inputs: list[Any], outputs: list[Any], known: dict[int, str], prefix: str, path: str, depth: int
    ) -> None:
        """Declare the calls computing `outputs` from `inputs`, and their edges; `known` maps id(tensor) to the id
        of the node that draws its producer, and is filled in for every tensor computed here. `prefix` starts the
        ids of the nodes declared here, `path` their layers' names in labels ("decoder/" inside a decoder)."""
        nodes, consumers = _graph_nodes(inputs, outputs, known)
        output_ids = {id(t) for t in outputs}
        absorbed: set[int] = set()
        for node in nodes:
            if id(node) in absorbed:
                continue
            operation = node.operation
            if isinstance(operation, keras.layers.InputLayer):
                tensor = node.outputs[0]
                self.input_symbols(tensor)
                node_id = self.new_id(prefix + operation.name)
                self.declare(
                    depth, node_id, [operation.name, f"{self.shape_text([tensor])} {tensor.dtype}"], "round", "io"
                )
                known[id(tensor)] = node_id
            elif self.expand and _is_graph_model(operation):
                self.nested_model(node, known, prefix, path, depth)
            elif self.expand and _describer(operation) is not None:
                group = [node]
                while True:
                    following = consumers.get(id(group[-1].outputs[0]), [])
                    if (
                        len(following) != 1
                        or id(group[-1].outputs[0]) in output_ids
                        or not _same_call(group[-1], following[0])
                    ):
                        break
                    group.append(following[0])
                    absorbed.add(id(following[0]))
                self.expanded_layer(group, known, prefix, path, depth)
            else:
                self.leaf(node, known, prefix, path, depth)

    def register_weights(self, layer: Any, name: str) -> str | None:
        """Note the layer's variables under `name`; returns the name of an earlier layer it shares weights with."""
        owner = None
        for variable in layer.weights:
            if id(variable) in self.weight_owners and owner is None:
                owner = self.weight_owners[id(variable)]
            self.weight_owners.setdefault(id(variable), name)
        return owner

    def leaf(self, node: Any, known: dict[int, str], prefix: str, path: str, depth: int) -> None:
        operation = node.operation
        arguments = _bound_arguments(node)
        self.node_symbols(node)
        shape = self.shape_text(node.outputs)
        is_layer = isinstance(operation, keras.layers.Layer)
        if is_layer:
            self.calls[id(operation)] += 1
            call = self.calls[id(operation)]
            lines = [operation.name if call == 1 else f"{operation.name} · call {call}", type(operation).__name__]
            options = [
                f"{name}={value!r}"
                for name, value in arguments
                if name != "training" and isinstance(value, (bool, int, float, str))
            ]
            if options:
                lines.append(", ".join(options))
            lines.append(shape)
            owner = self.register_weights(operation, path + operation.name) if call == 1 else None
            if owner is not None:
                lines.append(f"tied to {owner}")
            node_id = self.new_id(prefix + operation.name)
            self.declare(depth, node_id, lines)
        else:  # a keras.ops call: a small node showing the call
            name = _snake(type(operation).__name__)
            call = ", ".join([_value_text(value) for _, value in arguments])
            node_id = self.new_id(prefix + name)
            self.declare(depth, node_id, [f"{name}({call})", shape], style="op")
        for index, (parameter, value) in enumerate(arguments):
            tensors = _tensors(value)
            names, primary = [parameter] * len(tensors), index == 0
            if primary and _is_graph_model(operation) and len(operation.inputs) > 1:
                # A model's several inputs come in one argument: name each edge after the input it feeds.
                names, primary = [inner.name for inner in operation.inputs], False
            for name, tensor in zip(names, tensors):
                self.edge(known[id(tensor)], node_id, *_edge_kind(name, tensor, primary, is_layer))
        for tensor in node.outputs:
            known[id(tensor)] = node_id

    def nested_model(self, node: Any, known: dict[int, str], prefix: str, path: str, depth: int) -> None:
        model = node.operation
        graph_id = self.new_id(prefix + model.name)
        inner_known = {}
        for inner, outer in _model_inputs(node):
            inner_known[id(inner)] = known[id(outer)]
            self.symbols[id(inner)] = self.symbols.get(id(outer), ())
        for parameter, value in _bound_arguments(node)[1:]:  # the Keras masks of the inputs: to the whole model
            for tensor in _tensors(value):
                self.edge(known[id(tensor)], graph_id, *_edge_kind(parameter, tensor, False, False))
        self.subgraph(depth, graph_id, f"{model.name} · {type(model).__name__}", "model")
        self.scope(model.inputs, model.outputs, inner_known, f"{graph_id}__", f"{path}{model.name}/", depth + 1)
        self.lines.append(f"{'    ' * depth}end")
        for outer_tensor, inner_tensor in zip(node.outputs, model.outputs):
            known[id(outer_tensor)] = inner_known[id(inner_tensor)]
            self.symbols[id(outer_tensor)] = self.symbols.get(id(inner_tensor), ())

    def expanded_layer(self, group: list[Any], known: dict[int, str], prefix: str, path: str, depth: int) -> None:
        """A layer drawn as its inside; `group` is a run of identical calls, each on the previous one's output."""
        node = group[0]
        layer = node.operation
        arguments: dict[str, list[Any]] = {}
        for name, value in _bound_arguments(node):
            tensors = _tensors(value)
            if tensors:
                arguments[name] = tensors
        parameters = set(inspect.signature(layer.call).parameters)
        inside = _describer(layer)(layer, frozenset(arguments))
        for member in group:
            self.node_symbols(member)
            self.register_weights(member.operation, path + member.operation.name)
            self.calls[id(member.operation)] += 1
        call = self.calls[id(layer)]
        if len(group) > 1:
            names = f"{layer.name} … {group[-1].operation.name} × {len(group)}"
        else:
            names = layer.name if call == 1 else f"{layer.name} · call {call}"
        graph_id = self.new_id(prefix + layer.name)
        self.subgraph(depth, graph_id, f"{names} · {type(layer).__name__}", "block")
        part_ids = {}
        for part in inside.parts:
            part_ids[part.key] = self.new_id(f"{graph_id}__{part.key}")
            lines = part.label.split("\n")
            if part.key == inside.output:
                lines.append(self.shape_text(group[-1].outputs))
            self.declare(depth + 1, part_ids[part.key], lines, style=part.style)
        self.lines.append(f"{'    ' * depth}end")
        for flow in inside.flows:
            label = flow.label if flow.label is not None else _KIND_LABELS.get(flow.kind)
            if flow.source in part_ids:
                sources = [part_ids[flow.source]]
            elif flow.source in parameters:
                sources = [known[id(t)] for t in arguments.get(flow.source, [])]
            else:
                raise ValueError(
                    f"{type(layer).__name__}'s diagram has a flow from {flow.source!r}, which is "
                    "neither one of its parts nor an argument of its call."
                )
            for source in sources:
                self.edge(source, part_ids[flow.target], flow.kind, label)
        for member in group:
            for tensor in member.outputs:
                known[id(tensor)] = part_ids[inside.output]


def mermaid_diagram(model: keras.Model, *, expand: bool = True, title: str | None = None) -> str:
    """A Mermaid `flowchart` of a functional (or Sequential) model, read off its Keras graph.

    Args:
        model: a built functional or Sequential `keras.Model` (kerasllm's models are functional).
        expand: draw nested functional models as subgraphs and registered layers (`register_inside`) as their
            sub-layers; a run of identical such layers, each on the previous one's output, is drawn once as
            "first … last × N". `False` draws every layer call as one node. Defaults to `True`.
        title: a title above the chart, or `None` for none.

    Returns:
        The flowchart text, the same for the same model on every call.

    Example:

    ```python
    inputs = keras.Input((None,), dtype="int32", name="token_ids")
    outputs = keras.layers.Dense(4)(keras.layers.Embedding(100, 8)(inputs))
    print(mermaid_diagram(keras.Model(inputs, outputs)))
    ```
    """
    if not _is_graph_model(model):
        raise ValueError(
            f"{model.name} has no functional graph to draw: build a functional or Sequential model "
            "(a subclassed model's call is opaque to Keras)."
        )
    chart = _Chart(expand)
    chart.model(model)
    return chart.text(title)


def diagram_markdown(model: keras.Model, *, expand: bool = True, title: str | None = None) -> str:
    """`mermaid_diagram` in a fenced ```mermaid block, ready to paste into a README."""
    return f"```mermaid\n{mermaid_diagram(model, expand=expand, title=title)}```\n"

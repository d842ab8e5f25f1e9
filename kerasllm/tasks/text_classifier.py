"""Text classifiers: a backbone reads the token ids, a pooling makes one vector per text, a dense layer scores it.

    token ids [B, S] → backbone → hidden [B, S, D] → SequencePooling → dropout → Dense → logits [B, num_classes]

The two backbones are the ones the comparison is about: `TransformerClassifier` (a `TransformerEncoder`, self-
attention over the whole text at once) and `RNNClassifier` (an `RNNEncoder`: SimpleRNN, LSTM or GRU, reading the
text in order, optionally both ways). Everything after the backbone is the same code, so a difference in
accuracy is the backbone's. Token id 0 is padding and never reaches the pooled vector. The logits are float32
whatever the dtype policy, for the softmax and the loss.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from kerasllm.layers import RNNEncoder, SequencePooling
from kerasllm.models import TransformerEncoder


def _head(pooled: Any, num_classes: int, dropout: float, dtype: Any) -> Any:
    pooled = keras.layers.Dropout(dropout, dtype=dtype, name="head_dropout")(pooled)
    return keras.layers.Dense(num_classes, dtype="float32", name="logits")(pooled)


class _Classifier(keras.Model):
    """The config plumbing both classifiers share: every constructor argument is kept and serialized."""

    def _keep_config(self, dtype: Any, **config: Any) -> None:
        if dtype is not None:  # keras.Model's functional constructor ignores dtype: keep it for the config
            self.dtype_policy = dtype
        self._config = config
        for key, value in config.items():
            setattr(self, key, value)

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            **self._config,
        }

    @classmethod
    def from_config(cls, config: dict) -> _Classifier:
        return cls(**config)


@keras.saving.register_keras_serializable(package="kerasllm")
class TransformerClassifier(_Classifier):
    """A Transformer encoder classifier: token ids [B, S] → logits [B, num_classes] float32.

    Args:
        vocabulary_size: int, the number of token ids.
        num_classes: int, the number of classes.
        num_layers: int, encoder layers. Defaults to `2`.
        hidden_dim: int, the model width. Defaults to `128`.
        num_heads: int, attention heads. Defaults to `4`.
        intermediate_dim: int, the feed-forward inner size. Defaults to `256`.
        dropout: float, in the encoder and before the dense layer. Defaults to `0.1`.
        max_length: int, the longest sequence, [CLS] included. Defaults to `256`.
        position: `"sinusoidal"` or `"learned"`. Defaults to `"learned"`.
        normalize_first: bool, pre-norm layers. Defaults to `True` (stabler from scratch than post-norm).
        activation: feed-forward activation. Defaults to `"gelu"`.
        pooling: `"mean"` or `"max"` over the tokens, or `"cls"`: the model puts `cls_id` before the tokens and
            reads that position (BERT). Defaults to `"mean"`.
        cls_id: int, the [CLS] token id; needed with `pooling="cls"`. Defaults to `None`.
        embedding_trainable: bool, `False` freezes the token embedding (e.g. at pretrained word vectors).
            Defaults to `True`.
        dtype: dtype policy of the layers; `None` for the global policy.
        **kwargs: `keras.Model` arguments (`name`, ...).

    Example:

    ```python
    model = kerasllm.tasks.TransformerClassifier(vocabulary_size=100, num_classes=2, hidden_dim=32,
                                                 intermediate_dim=64, max_length=16)
    logits = model(np.array([[5, 6, 7, 0]], dtype="int32"))  # [1, 2]
    ```
    """

    def __init__(
        self,
        vocabulary_size: int,
        num_classes: int,
        num_layers: int = 2,
        hidden_dim: int = 128,
        num_heads: int = 4,
        intermediate_dim: int = 256,
        dropout: float = 0.1,
        max_length: int = 256,
        position: str = "learned",
        normalize_first: bool = True,
        activation: str = "gelu",
        pooling: str = "mean",
        cls_id: int | None = None,
        embedding_trainable: bool = True,
        dtype: Any = None,
        **kwargs: Any,
    ) -> None:
        if pooling not in ("mean", "max", "cls"):
            raise ValueError(f"pooling must be 'mean', 'max' or 'cls', got {pooling!r}")
        if pooling == "cls" and cls_id is None:
            raise ValueError("pooling='cls' needs cls_id, the [CLS] token id of the vocabulary")
        # === Layers ===
        self.backbone = TransformerEncoder(
            vocabulary_size,
            num_layers,
            hidden_dim,
            num_heads,
            intermediate_dim,
            dropout=dropout,
            max_length=max_length,
            position=position,
            normalize_first=normalize_first,
            activation=activation,
            dtype=dtype,
            name="backbone",
        )
        self.pooling_layer = SequencePooling("first" if pooling == "cls" else pooling, dtype=dtype, name="pooling")

        # === Functional model ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        inputs = token_ids
        if pooling == "cls":
            inputs = ops.concatenate([ops.full_like(token_ids[:, :1], cls_id), token_ids], axis=1)
        hidden = self.backbone(inputs)
        pooled = self.pooling_layer(hidden, padding_mask=ops.not_equal(inputs, 0))
        super().__init__(inputs=token_ids, outputs=_head(pooled, num_classes, dropout, dtype), dtype=dtype, **kwargs)
        self.token_embedding.trainable = embedding_trainable
        self._keep_config(
            dtype,
            vocabulary_size=vocabulary_size,
            num_classes=num_classes,
            num_layers=num_layers,
            hidden_dim=hidden_dim,
            num_heads=num_heads,
            intermediate_dim=intermediate_dim,
            dropout=dropout,
            max_length=max_length,
            position=position,
            normalize_first=normalize_first,
            activation=activation,
            pooling=pooling,
            cls_id=cls_id,
            embedding_trainable=embedding_trainable,
        )

    @property
    def token_embedding(self) -> keras.layers.Embedding:
        """The token embedding [vocabulary_size, hidden_dim] (scaled by sqrt(hidden_dim) before the positions
        are added): the layer pretrained word vectors initialise."""
        return self.backbone.token_embedding


@keras.saving.register_keras_serializable(package="kerasllm")
class RNNClassifier(_Classifier):
    """A recurrent classifier (SimpleRNN, LSTM or GRU): token ids [B, S] → logits [B, num_classes] float32.

    Args:
        vocabulary_size: int, the number of token ids.
        num_classes: int, the number of classes.
        cell: `"lstm"`, `"gru"` or `"simple_rnn"`. Defaults to `"lstm"`.
        units: int, the state size of each direction. Defaults to `128`.
        embedding_dim: int. Defaults to `128`.
        num_layers: int, stacked recurrent layers. Defaults to `1`.
        bidirectional: bool. Defaults to `True`.
        dropout: float, on the embedding, between layers and before the dense layer. Defaults to `0.3`.
        pooling: `"max"` or `"mean"` over the top layer's outputs, or `"final"`: the top layer's final state
            (of each direction). Defaults to `"max"`.
        embedding_trainable: bool, `False` freezes the token embedding (e.g. at pretrained word vectors).
            Defaults to `True`.
        dtype: dtype policy of the layers; `None` for the global policy.
        **kwargs: `keras.Model` arguments (`name`, ...).

    Example:

    ```python
    model = kerasllm.tasks.RNNClassifier(vocabulary_size=100, num_classes=4, cell="gru", units=16,
                                         embedding_dim=8)
    logits = model(np.array([[5, 6, 7, 0]], dtype="int32"))  # [1, 4]
    ```
    """

    def __init__(
        self,
        vocabulary_size: int,
        num_classes: int,
        cell: str = "lstm",
        units: int = 128,
        embedding_dim: int = 128,
        num_layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.3,
        pooling: str = "max",
        embedding_trainable: bool = True,
        dtype: Any = None,
        **kwargs: Any,
    ) -> None:
        if pooling not in ("mean", "max", "final"):
            raise ValueError(f"pooling must be 'mean', 'max' or 'final', got {pooling!r}")
        # === Layers ===
        self.backbone = RNNEncoder(
            units,
            vocabulary_size=vocabulary_size,
            embedding_dim=embedding_dim,
            cell=cell,
            num_layers=num_layers,
            bidirectional=bidirectional,
            dropout=dropout,
            dtype=dtype,
            name="backbone",
        )
        self.pooling_layer = None if pooling == "final" else SequencePooling(pooling, dtype=dtype, name="pooling")

        # === Functional model ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        padding_mask = ops.not_equal(token_ids, 0)
        outputs, states = self.backbone(token_ids, padding_mask=padding_mask)
        if self.pooling_layer is None:
            pooled = states[0][:, -1]  # the top layer's final hidden state
        else:
            pooled = self.pooling_layer(outputs, padding_mask=padding_mask)
        super().__init__(inputs=token_ids, outputs=_head(pooled, num_classes, dropout, dtype), dtype=dtype, **kwargs)
        self.token_embedding.trainable = embedding_trainable
        self._keep_config(
            dtype,
            vocabulary_size=vocabulary_size,
            num_classes=num_classes,
            cell=cell,
            units=units,
            embedding_dim=embedding_dim,
            num_layers=num_layers,
            bidirectional=bidirectional,
            dropout=dropout,
            pooling=pooling,
            embedding_trainable=embedding_trainable,
        )

    @property
    def token_embedding(self) -> keras.layers.Embedding:
        """The token embedding [vocabulary_size, embedding_dim]: the layer pretrained word vectors initialise."""
        return self.backbone.embedding

"""kerasllm: Transformer and LSTM seq2seq models in Keras 3, trained with model.fit, served by TF Serving.

The package is layered; imports flow one way:
data -> layers -> models -> training -> decoding -> export -> serving -> apps.
Submodules are imported on demand so that `import kerasllm` and `kerasllm --help` stay fast.
"""

__version__ = "0.1.0"

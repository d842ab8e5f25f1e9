"""kerasllm: Transformer, GPT and LSTM models in Keras 3, trained with model.fit, served by TF Serving.

The package is layered; imports flow one way:
data -> layers -> models -> tasks -> training -> decoding -> export -> distribute -> runner -> serving -> apps
(`diagram` reads any model and is used by the apps' CLI only).
Submodules are imported on demand so that `import kerasllm` and `kerasllm --help` stay fast.
"""

__version__ = "0.1.0"

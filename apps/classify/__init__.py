"""The classify app: RNN and Transformer text classifiers on SST-2, AG News and SMS spam, served by TF Serving."""

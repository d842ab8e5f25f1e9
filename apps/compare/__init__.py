"""`kerasllm compare`: LSTM, LSTM + attention and Transformer on the same data and budget, with a report."""

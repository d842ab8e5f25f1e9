"""The generate app: a GPT (or LSTM/GRU) language model on tiny Shakespeare, sampled and served."""

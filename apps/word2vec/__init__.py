"""The word2vec app: word vectors trained on the local English corpus, scored on the standard word benchmarks."""

"""The kerasllm apps: thin configs plus glue over the library, and the `kerasllm` command line."""

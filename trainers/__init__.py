"""The bundled trainer: tokenizer, tiny Llama-style decoder, training loop, evaluation, ablations, reports."""

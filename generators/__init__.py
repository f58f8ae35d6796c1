"""Prompt sampling, LLM backends (a registry), and the generation runner (cache, resume, retries)."""

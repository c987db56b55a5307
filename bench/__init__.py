"""bench: choose a small, fast Turkish text encoder for retrieval (RAG)."""

__version__ = "0.1.0"

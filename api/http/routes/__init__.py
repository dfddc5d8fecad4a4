"""Versioned HTTP routes. Each module parses, authorises, calls ``graph``/``embeddings`` and formats."""

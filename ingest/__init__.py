"""Ingestion: load and validate evidence cards, split them by section, and index them in Chroma."""

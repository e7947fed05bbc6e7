"""Retrieval-augmented answers: embeddings, the FAISS index, hybrid search, grounded generation."""

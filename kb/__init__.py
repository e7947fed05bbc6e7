"""The knowledge base: turns an owner's files and web pages into chunks and FAQ pairs in SQLite."""

"""The ML Metadata table: relational schema, the store behind it, and its in-memory index."""

"""Datasets: CSV/JSON/Parquet ingested once into columnar storage, opened in a layout."""

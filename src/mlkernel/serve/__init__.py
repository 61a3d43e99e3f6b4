"""Serving: the model server's request and response codecs (Open Inference Protocol and
a simple v1 JSON API, :mod:`mlkernel.serve.protocol`). See docs/serving.md.

Importing this package loads nothing heavy.
"""

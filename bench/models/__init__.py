"""Candidates and runtimes: the registry, encoders (torch, ONNX, Q4), BM25, pipelines, embedding cache."""

"""Measurement: retrieval scoring, statistics, speed, the CI gate and the mteb cross-check."""

"""Training: registry entries with a `train:` block are built here (MLM, contrastive, cross-encoder recipes).

Heavy libraries (torch, transformers, sentence-transformers) are imported inside the recipes, so the registry and
`bench list` stay quick.
"""

"""bench: choose a small, fast Turkish text encoder for retrieval (RAG).

The command line is a thin layer over functions a notebook can call too:

    import bench
    records = bench.run(models="models.yaml", tasks=["tr_mini_wiki"], only=["BM25 (Turkish Snowball)"])
    bench.to_frame(records)
"""

from bench.version import __version__  # noqa: F401 (the package's public version)


def run(*args, **kwargs):
    from bench.runner import run as _run

    return _run(*args, **kwargs)


def to_frame(records):
    from bench.runner import to_frame as _to_frame

    return _to_frame(records)

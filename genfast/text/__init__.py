"""Character-level text generation: a CharLSTM (genfast.nn) trained on a corpus, sampled with
temperature, top-k and top-p in one native call.

    corpus = read_corpus("shakespeare.txt")                       # or builtin_corpus()
    model, vocab, history = train(corpus, "shakespeare.safetensors", TrainConfig(epochs=2))
    print(generate(model, vocab, "ROMEO:", length=400, temperature=0.5)[0])
    model, vocab = load("shakespeare.safetensors")

data.py (vocabulary, windows, corpora), train.py, sample.py (load, generate), metrics.py, cli.py.
"""

from genfast.text.data import CharWindows, Vocabulary, builtin_corpus, corpus_digest, read_corpus
from genfast.text.metrics import distinct_ngram_ratio, evaluate, unigram_entropy_bits
from genfast.text.sample import generate, load, save_model
from genfast.text.train import TrainConfig, train, train_run

__all__ = ["Vocabulary", "CharWindows", "TrainConfig", "train", "train_run", "load", "save_model", "generate",
           "evaluate", "read_corpus", "builtin_corpus", "corpus_digest", "unigram_entropy_bits",
           "distinct_ngram_ratio"]

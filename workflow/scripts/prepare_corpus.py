"""Snakemake adapter: read and tokenize the corpus into windows (intraneuron.corpus)."""

from intraneuron.corpus import describe_source, iter_documents, tokenize_corpus, write_tokens
from intraneuron.models import load_tokenizer, resolve_model_path
from intraneuron.runtime import package_versions, run_script


def main(smk, log):
    corpus = smk.params.corpus
    tokenizer = load_tokenizer(resolve_model_path(smk.params.model["id"], smk.params.model["revision"]))
    table = tokenize_corpus(iter_documents(corpus), tokenizer, corpus["window_tokens"],
                            corpus["max_tokens"])
    write_tokens(table, smk.output.tokens, {"source": describe_source(corpus),
                                            "model": smk.params.model,
                                            "versions": package_versions()})
    log.info("%d windows, %d tokens", table.num_rows, sum(table.column("n_tokens").to_pylist()))


run_script(snakemake, main)

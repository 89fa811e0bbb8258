"""Snakemake adapter: read and tokenize the corpus into windows (intraneuron.corpus)."""

from intraneuron.config import run_configs
from intraneuron.corpus import (
    check_vocabulary,
    describe_source,
    iter_documents,
    report_special_token_text,
    tokenize_corpus,
    write_tokens,
)
from intraneuron.models import load_tokenizer, resolve_model_path, special_token_ids
from intraneuron.runtime import package_versions, run_script


def main(smk, log):
    corpus = smk.params.corpus
    tokenizer = load_tokenizer(resolve_model_path(smk.params.model["id"], smk.params.model["revision"]))
    files = []  # every file read, with its size and hash, for the provenance
    table = tokenize_corpus(iter_documents(corpus, read=files), tokenizer,
                            corpus["window_tokens"], corpus["max_tokens"])
    # Core-token settings (of every variant) are read from the config, not params: they decide only whether the
    # corpus can serve the analysis (checked here, before any forward pass), not what is written,
    # so changing them must not rerun the corpus.
    for variant in run_configs(smk.config)[smk.wildcards.model].values():
        core = variant["core_tokens"]
        excluded = special_token_ids(tokenizer) if core["exclude_special"] else []
        vocabulary = check_vocabulary(table, tokenizer, core["k"], core["min_count"], excluded)
    report_special_token_text(table, log)
    write_tokens(table, smk.output.tokens, {"source": describe_source(corpus),
                                            "files": files,
                                            **vocabulary,
                                            "model": smk.params.model,
                                            "versions": package_versions()})
    log.info("%d windows, %d tokens, %d token types, %.2f%% unknown, %d files read",
             table.num_rows, sum(table.column("n_tokens").to_pylist()), vocabulary["n_types"],
             100 * vocabulary["unknown_share"], len(files))


run_script(snakemake, main)

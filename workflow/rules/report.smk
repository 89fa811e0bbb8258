rule compare_openai:
    input:
        tokens=rules.merge.output.tokens,
    output:
        overlap=report(
            f"{RESULTS}/openai_overlap.parquet",
            caption="../report/openai.rst",
            category="Tables",
        ),
    params:
        directory=OPENAI["directory"],
        top_n=OPENAI["top_n"],
    log:
        f"{LOGS}/compare_openai.log",
    benchmark:
        f"{RESULTS}/benchmarks/compare_openai.tsv"
    conda:
        "../envs/intraneuron.yaml"
    script:
        "../scripts/compare_openai.py"


rule report:
    input:
        unpack(lambda wildcards: optional_outputs()),
        neurons=rules.merge.output.neurons,
        layers=rules.merge.output.layers,
        claims=rules.merge.output.claims,
        criteria=rules.merge.output.criteria,
        contrasts=rules.merge.output.contrasts,
        tokens=rules.merge.output.tokens,
        segments=rules.merge.output.segments,
        clusters=rules.merge.output.clusters,
        provenance=f"{RESULTS}/activations/L{min(config['layers'])}.h5",
        benchmarks=benchmark_inputs,
    output:
        html=report(
            f"{RESULTS}/report/index.html",
            caption="../report/index.rst",
            category="Report",
        ),
        figures=report(
            directory(f"{RESULTS}/report/figures"),
            patterns=["{name}.png"],
            caption="../report/figures.rst",
            category="Figures",
        ),
    params:
        config=config,
        config_hash=CONFIG_HASH,
    log:
        f"{LOGS}/report.log",
    benchmark:
        f"{RESULTS}/benchmarks/report.tsv"
    conda:
        "../envs/intraneuron.yaml"
    script:
        "../scripts/report.py"

rule report:
    input:
        neurons=rules.merge.output.neurons,
        layers=rules.merge.output.layers,
        claims=rules.merge.output.claims,
        tokens=rules.merge.output.tokens,
        segments=rules.merge.output.segments,
        clusters=rules.merge.output.clusters,
        provenance=RESULTS + "/activations/L" + str(min(config["layers"])) + ".h5",
    output:
        html=report(
            RESULTS + "/report/index.html",
            caption="../report/index.rst",
            category="Report",
        ),
        figures=report(
            directory(RESULTS + "/report/figures"),
            patterns=["{name}.png"],
            caption="../report/figures.rst",
            category="Figures",
        ),
    params:
        config=config,
        config_hash=CONFIG_HASH,
    log:
        "logs/report.log",
    benchmark:
        RESULTS + "/benchmarks/report.tsv"
    conda:
        "../envs/intraneuron.yaml"
    script:
        "../scripts/report.py"

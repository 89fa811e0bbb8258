rule compare_openai:
    input:
        tokens=f"{MODEL_DIR}/variants/{BASE_VARIANT}/tables/tokens.parquet",
        settings=settings_file(f"{MODEL_SETTINGS}/openai.json", openai=OPENAI),
    output:
        overlap=report(
            f"{MODEL_DIR}/openai_overlap.parquet",
            caption="../report/openai.rst",
            category="Tables",
            subcategory="{model}",
        ),
    params:
        directory=OPENAI["directory"],
        top_n=OPENAI["top_n"],
    log:
        f"{LOGS}/{{model}}/compare_openai.log",
    benchmark:
        f"{BENCHMARKS}/{{model}}/compare_openai.tsv"
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/compare_openai.py"


# One model's page: the base variant in full, with its neuron browser.
rule report_model:
    input:
        unpack(model_optional_outputs),
        unpack(base_tables),
        provenance=layer_file,
        benchmarks=benchmark_inputs,
        settings=settings_file(
            f"{MODEL_SETTINGS}/report.json",
            config=model_setting(),
            optional=lambda wildcards: sorted(model_optional_outputs(wildcards)),
        ),
    output:
        html=report(
            f"{RESULTS}/report/models/{{model}}.html",
            caption="../report/index.rst",
            category="Report",
            subcategory="{model}",
        ),
        figures=report(
            directory(f"{RESULTS}/report/models/{{model}}_figures"),
            patterns=["{name}.png"],
            caption="../report/figures.rst",
            category="Figures",
            subcategory="{model}",
        ),
        # every neuron's data, script files the page loads on demand
        data=directory(f"{RESULTS}/report/models/{{model}}_data"),
    params:
        config=model_setting(),
        config_hash=model_config_hash,
        # links to the overview and the random-weights twin; rule names for the stage times
        site={"models": MODEL_DESCRIPTIONS, "overview": REPORT_HTML},
        rules=lambda wildcards: sorted(r.name for r in workflow.rules),
    log:
        f"{LOGS}/{{model}}/report.log",
    benchmark:
        f"{BENCHMARKS}/{{model}}/report.tsv"
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/report_model.py"


rule robustness:
    input:
        claims=variant_tables("claims"),
        criteria=variant_tables("criteria"),
        neurons=variant_tables("neurons"),
        settings=settings_file(f"{RESULTS}/settings/robustness.json", runs=RUN_DESCRIPTIONS),
    output:
        matrix=report(
            f"{RESULTS}/robustness.parquet",
            caption="../report/robustness.rst",
            category="Tables",
        ),
        summary=f"{RESULTS}/robustness_summary.parquet",
    params:
        runs=RUN_DESCRIPTIONS,
    log:
        f"{LOGS}/robustness.log",
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/robustness.py"


# The run's page: every model and variant side by side, linking each model's page.
rule overview:
    input:
        claims=variant_tables("claims"),
        layers=variant_tables("layers"),
        criteria=variant_tables("criteria"),
        matrix=rules.robustness.output.matrix,
        summary=rules.robustness.output.summary,
        pages=MODEL_PAGES,
        ablation=[ablation_tables(m)["ablation_layers"] for m in ABLATED],
        settings=settings_file(
            f"{RESULTS}/settings/overview.json",
            runs=RUN_DESCRIPTIONS,
            models=MODEL_DESCRIPTIONS,
            ablated=list(ABLATED),
            config=config,
        ),
    output:
        html=report(REPORT_HTML, caption="../report/overview.rst", category="Report"),
        # the overview's figure (PNG, SVG) and its tables as CSV
        files=directory(f"{RESULTS}/report/index_files"),
    params:
        runs=RUN_DESCRIPTIONS,
        models=MODEL_DESCRIPTIONS,
        ablated=list(ABLATED),
        config=config,
    log:
        f"{LOGS}/overview.log",
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/overview.py"

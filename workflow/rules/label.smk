# Prompt-based categories (intraneuron.labels): an instruct model names the base variant's
# clusters and coarse segments of each labelled model; the model's page shows the labels and
# the share of neurons whose cluster labels are distinct.
from intraneuron.labels.prompts import PROMPTS_PATH


rule label:
    input:
        tokens=f"{MODEL_DIR}/variants/{BASE_VARIANT}/tables/tokens.parquet",
        labeller=labeller_inputs,
        prompts=str(PROMPTS_PATH),
        settings=settings_file(f"{MODEL_SETTINGS}/labels.json", labels=LABEL_SETTINGS),
    output:
        **label_tables("{model}"),
    params:
        labels=LABELS,
    threads: workflow.cores
    log:
        f"{LOGS}/{{model}}/label.log",
    benchmark:
        f"{BENCHMARKS}/{{model}}/label.tsv"
    conda:
        "../envs/model.yaml"
    script:
        "../scripts/label.py"

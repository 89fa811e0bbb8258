# Prompt-based categories (intraneuron.labels): an instruct model names the base variant's
# clusters and coarse segments of each labelled model; the model's page shows the labels and
# the share of neurons whose cluster labels are distinct.
from intraneuron.config import label_settings
from intraneuron.labels import default_prompts
from intraneuron.labels.prompts import PROMPTS_PATH

LABELS = config["labels"]
LABEL_SETTINGS = label_settings(LABELS, default_prompts().key)


def labeller_inputs(wildcards):
    """The local labeller's checkpoint folder when it is a file here (a converted GGUF model
    is made by convert_gguf first); nothing for a hub id or a server."""
    model = LABELS["model"]
    made = {str(checkpoint_dir(cfg["model"]["id"])) for cfg in MODELS.values()}
    made = {p for p in made if p.startswith("resources/models/")}
    if LABELS["backend"] == "local" and (model in made or os.path.isdir(model)):
        return [model]
    return []


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

# Config validation, the shard plan and path helpers. Everything here runs at parse time and must
# never load model weights: `snakemake -n` has to work offline.
import os
import sys

# In a source checkout (also when this workflow is used as a module), the package next to the
# rules comes first: for this process, and through PYTHONPATH for every job's script, so rules
# and package always match and per-rule conda environments need not install the package.
_SRC = os.path.join(workflow.current_basedir.get_path_or_uri(secret_free=True), "..", "..", "src")
if os.path.isdir(os.path.join(_SRC, "intraneuron")):
    _SRC = os.path.abspath(_SRC)
    sys.path.insert(0, _SRC)
    os.environ.update(PYTHONPATH=os.pathsep.join(p for p in (_SRC, os.getenv("PYTHONPATH")) if p))

from intraneuron.config import ConfigError, subset_hash, validate
from intraneuron.corpus import corpus_files
from intraneuron.models import ModelError
from intraneuron.plan import local_model_files, neurons_per_layer, shards
from intraneuron.runtime import drop_stale_report, gpu_request_problem, retire_report

# Fast tokenizers fork-warn (and can deadlock) under Snakemake's job processes.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

try:
    validated = validate(config)
    config.clear()
    config.update(validated)
    N_NEURONS = neurons_per_layer(config)
except (ConfigError, ModelError) as exc:
    sys.exit(f"intraneuron: {exc}")

SHARDS = shards(config, N_NEURONS)


localrules:
    all,
    compare_openai,


RESULTS = config["results"]
SHARD_DIR = f"{RESULTS}/shards/L{{layer}}/B{{block}}"
# Logs live with the results they explain: moving `results` moves them, and two configs with
# different `results` never overwrite each other's logs.
LOGS = f"{RESULTS}/logs"
REPORT_HTML = f"{RESULTS}/report/index.html"


scattergather:
    extract=config["extract"]["chunks"],


wildcard_constraints:
    layer=r"\d+",
    block=r"\d+",


def shard_bounds(wildcards):
    size = config["block_size"]
    start = int(wildcards.block) * size
    return {"start": start, "stop": min(start + size, N_NEURONS)}


def shard_outputs(name):
    return [f"{RESULTS}/shards/L{s.layer}/B{s.block}/{name}" for s in SHARDS]


def layer_shard_outputs(name):
    return lambda wildcards: [
        f"{RESULTS}/shards/L{s.layer}/B{s.block}/{name}"
        for s in SHARDS
        if s.layer == int(wildcards.layer)
    ]


OPENAI = config["openai_comparison"]


def optional_outputs():
    """Outputs of optional rules, by report input name."""
    if OPENAI["directory"]:
        return {"openai": f"{RESULTS}/openai_overlap.parquet"}
    return {}


def final_outputs():
    return [
        f"{RESULTS}/neurons.parquet",
        f"{RESULTS}/layers.parquet",
        f"{RESULTS}/claims.parquet",
        f"{RESULTS}/report/index.html",
        *optional_outputs().values(),
    ]


# Config subsets: each rule receives (and is rerun on changes of) only what it depends on.
MODEL = {k: config["model"][k] for k in ("id", "revision", "architecture")}
if config["model"]["weights"] == "random":  # pretrained runs keep their params (no reruns)
    MODEL.update({k: config["model"][k] for k in ("weights", "init_seed")})
EXTRACTION = {
    "model": MODEL,
    "dtype": config["model"]["dtype"],
    "layers": sorted(config["layers"]),
    "n_neurons": N_NEURONS,
}
CONFIG_HASH = subset_hash(config)


# Input files: editing a corpus file (or adding one to the glob) or a local model's weights reruns
# the jobs that read them. Hub models are pinned by their revision in MODEL, a params entry.
MODEL_FILES = local_model_files(config["model"])


def corpus_inputs(wildcards):
    return corpus_files(config["corpus"])


onstart:
    problem = gpu_request_problem(
        workflow.executor_plugin.name if workflow.executor_plugin else None,
        dict(rules.extract.rule.resources),
        config["model"]["device"],
    )
    if problem:
        sys.exit(f"intraneuron: {problem}")
    # Every job of this workflow feeds the report: if any runs, the report on disk is stale.
    if any(job.rule.name != "all" for job in workflow.dag.needrun_jobs()):
        stale = retire_report(REPORT_HTML)
        if stale:
            print(
                f"intraneuron: {REPORT_HTML} moved to {stale} (marked STALE) until this "
                "run rebuilds it",
                file=sys.stderr,
            )


onsuccess:
    drop_stale_report(REPORT_HTML)


def benchmark_inputs(wildcards):
    """Every benchmark file of the jobs before the report: the stage times it shows."""
    layers, blocks = [s.layer for s in SHARDS], [s.block for s in SHARDS]
    return [
        rules.prepare_corpus.benchmark,
        *gather.extract(rules.extract.benchmark),
        *expand(rules.reduce_chunks.benchmark, layer=config["layers"]),
        *expand(rules.embeddings.benchmark, proxy=config["analysis"]["proxy"]),
        *expand(rules.core_tokens.benchmark, zip, layer=layers, block=blocks),
        *expand(rules.analyze.benchmark, zip, layer=layers, block=blocks),
        rules.merge.benchmark,
    ]

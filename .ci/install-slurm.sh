#!/usr/bin/env bash
# Install a local SLURM (slurm-wlm) and munge so the @pytest.mark.slurm tests can bring up a real
# single-node cluster (tests/helpers/slurm_cluster.py). Idempotent: does nothing when the daemons
# and clients are already there. Needs root; the daemons are started by the tests, not here.
set -euo pipefail

need=(slurmctld slurmd munged munge unmunge sbatch srun squeue scancel sinfo scontrol)
missing=()
for cmd in "${need[@]}"; do
    PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
done
if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-slurm: already installed ($(PATH="$PATH:/usr/sbin" slurmctld -V 2>/dev/null || true))"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-slurm: missing ${missing[*]} and not root; cannot apt-get install" >&2
    exit 1
fi
echo "install-slurm: missing ${missing[*]}; installing slurm-wlm munge"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq slurm-wlm munge
PATH="$PATH:/usr/sbin" slurmctld -V

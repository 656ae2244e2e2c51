#!/usr/bin/env bash
# Starts and stops a throwaway Kubernetes control plane on 127.0.0.1, with kwok as the kubelet.
#
#   tools/cluster.sh up       build missing binaries, start (or reuse) the cluster, print the kubeconfig path
#   tools/cluster.sh down     stop every process this script started (by pid) and check no port is left
#   tools/cluster.sh status   exit 0 when the cluster is up and ready
#   tools/cluster.sh env      print shell exports (KUBECONFIG, HELM3, HELM4, KUBECTL, the OCI registry)
#   tools/cluster.sh stop C   stop one component C (etcd, kube-apiserver, ...) of a running cluster
#   tools/cluster.sh kill C   the same with SIGKILL at once: a crash
#   tools/cluster.sh start C  start C again with the arguments `up` gave it, wait until it serves
#
# State lives in $HELM_ENGINE_CLUSTER_DIR (default: <cache>/cluster); the admin kubeconfig is
# $HELM_ENGINE_CLUSTER_DIR/kubeconfig. Ports come from HELM_ENGINE_PORT_BASE (default 16400):
# base+43 apiserver, +79 etcd client, +80 etcd peer, +57 controller-manager, +59 scheduler, +47 kwok,
# +81 the OCI registry (distribution; TLS from the cluster's CA, htpasswd auth with a random
# password per cluster in $HELM_ENGINE_CLUSTER_DIR/registry/password, storage in .../registry/data).
set -euo pipefail

TOOLS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE_DIR=${HELM_ENGINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/helm-engine}
CLUSTER_DIR=${HELM_ENGINE_CLUSTER_DIR:-$CACHE_DIR/cluster}
PORT_BASE=${HELM_ENGINE_PORT_BASE:-16400}
APISERVER_PORT=$((PORT_BASE + 43))
ETCD_CLIENT_PORT=$((PORT_BASE + 79))
ETCD_PEER_PORT=$((PORT_BASE + 80))
KCM_PORT=$((PORT_BASE + 57))
SCHEDULER_PORT=$((PORT_BASE + 59))
KWOK_PORT=$((PORT_BASE + 47))
REGISTRY_PORT=$((PORT_BASE + 81))
SERVICE_CIDR=10.96.0.0/16
SERVICE_FIRST_IP=10.96.0.1
POD_CIDR=10.244.0.0/16
NODE_NAME=kwok-node-0
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok registry)
READY_TIMEOUT=${HELM_ENGINE_READY_TIMEOUT:-60}

PKI=$CLUSTER_DIR/pki
LOGS=$CLUSTER_DIR/logs
PIDS=$CLUSTER_DIR/pids
KUBECONFIG_PATH=$CLUSTER_DIR/kubeconfig

die() { echo "cluster: $*" >&2; exit 1; }
say() { echo "cluster: $*"; }
bin() { "$TOOLS_DIR/toolchain.sh" path "$1"; }

port_of() {
  case "$1" in
    etcd) echo "$ETCD_CLIENT_PORT $ETCD_PEER_PORT" ;;
    kube-apiserver) echo "$APISERVER_PORT" ;;
    kube-controller-manager) echo "$KCM_PORT" ;;
    kube-scheduler) echo "$SCHEDULER_PORT" ;;
    kwok) echo "$KWOK_PORT" ;;
    registry) echo "$REGISTRY_PORT" ;;
  esac
}

port_listening() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

# A pid file is ours only while that pid still runs the binary we started (pids get reused).
running_pid() {
  local name=$1 pid exe
  [[ -f "$PIDS/$name.pid" ]] || return 1
  pid=$(cat "$PIDS/$name.pid")
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
  [[ "$exe" == "$(cat "$PIDS/$name.exe" 2>/dev/null)" ]] || return 1
  echo "$pid"
}

kubectl_admin() { "$(bin kubectl)" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

# What the running cluster was started from: this script, the kwok Stages and the versions. A
# cluster started by another checkout (older Stages, another node address) is not reused.
config_fingerprint() {
  cat "$TOOLS_DIR/cluster.sh" "$TOOLS_DIR/cluster/kwok-stages.yaml" "$TOOLS_DIR/versions.env" | sha256sum | cut -d' ' -f1
}

cluster_ready() {
  local c
  [[ "$(cat "$CLUSTER_DIR/fingerprint" 2>/dev/null)" == "$(config_fingerprint)" ]] || return 1
  for c in "${COMPONENTS[@]}"; do running_pid "$c" >/dev/null || return 1; done
  [[ "$(kubectl_admin get --raw /readyz 2>/dev/null)" == "ok" ]] || return 1
  [[ "$(kubectl_admin get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == "True" ]]
}

generate_pki() {
  mkdir -p "$PKI"
  local conf=$PKI/openssl.cnf
  cat > "$conf" <<EOF
[req]
distinguished_name = dn
[dn]
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
[v3_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, IP:$SERVICE_FIRST_IP, DNS:localhost, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local
[v3_client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
EOF
  (
    cd "$PKI"
    umask 077
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 30 \
      -subj "/CN=helm-engine-local-ca" -config "$conf" -extensions v3_ca 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver" -config "$conf" 2>/dev/null
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out apiserver.crt -days 30 \
      -extfile "$conf" -extensions v3_server 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr -subj "/O=system:masters/CN=helm-engine-admin" -config "$conf" 2>/dev/null
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out admin.crt -days 30 \
      -extfile "$conf" -extensions v3_client 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    rm -f ./*.csr
  ) || die "generating certificates with openssl failed (is openssl installed?)"
}

write_kubeconfig() {
  umask 077
  cat > "$KUBECONFIG_PATH" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: helm-engine-local
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority: $PKI/ca.crt
users:
- name: helm-engine-admin
  user:
    client-certificate: $PKI/admin.crt
    client-key: $PKI/admin.key
contexts:
- name: helm-engine-local
  context:
    cluster: helm-engine-local
    user: helm-engine-admin
current-context: helm-engine-local
EOF
}

start_component() {
  local name=$1; shift
  local exe pid
  exe=$(bin "$name")
  # 8>&- : the daemon must not inherit the lock fd, or every later up/down would block on it.
  setsid "$exe" "$@" >"$LOGS/$name.log" 2>&1 < /dev/null 8>&- &
  pid=$!
  echo "$pid" > "$PIDS/$name.pid"
  readlink -f "$exe" > "$PIDS/$name.exe"
}

wait_for() {
  local what=$1 component=$2; shift 2
  local deadline=$(( $(date +%s) + READY_TIMEOUT ))
  until "$@" >/dev/null 2>&1; do
    if ! running_pid "$component" >/dev/null; then
      tail -n 15 "$LOGS/$component.log" >&2 || true
      die "$component exited while waiting for $what (log: $LOGS/$component.log)"
    fi
    if (( $(date +%s) > deadline )); then
      tail -n 15 "$LOGS/$component.log" >&2 || true
      die "$component: timed out after ${READY_TIMEOUT}s waiting for $what (log: $LOGS/$component.log)"
    fi
    sleep 0.2
  done
}

etcd_healthy() { curl -fsS "http://127.0.0.1:$ETCD_CLIENT_PORT/health" | grep -q '"health":"true"'; }
apiserver_ready() { [[ "$(kubectl_admin get --raw /readyz 2>/dev/null)" == "ok" ]]; }
node_ready() {
  [[ "$(kubectl_admin get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')" == "True" ]]
}
default_sa_exists() { kubectl_admin -n default get serviceaccount default; }

# ---- the OCI registry (distribution), for oci:// charts ------------------------------------
REGISTRY_DIR=$CLUSTER_DIR/registry
REGISTRY_USER=helm-engine

# A server certificate of its own, signed by the cluster's CA: clients trust the one ca.crt.
generate_registry_pki() {
  local conf=$PKI/registry-openssl.cnf
  cat > "$conf" <<EOF
[req]
distinguished_name = dn
[dn]
[v3_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
EOF
  (
    cd "$PKI"
    umask 077
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout registry.key -out registry.csr \
      -subj "/CN=helm-engine-registry" -config "$conf" 2>/dev/null
    openssl x509 -req -in registry.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out registry.crt -days 30 \
      -extfile "$conf" -extensions v3_server 2>/dev/null
    rm -f registry.csr
  ) || die "generating the registry's certificate with openssl failed"
}

# Prints the bcrypt hash of the password read from stdin: the registry's htpasswd takes bcrypt
# only, which openssl cannot make. Python's bcrypt package when present, else the crypt module
# (Python < 3.13, bcrypt through libxcrypt). Cost 8, not 10+: the registry hashes on every
# authenticated request, and the password is 32 random characters.
bcrypt_hash() {
  local py
  for py in "$TOOLS_DIR/../.venv/bin/python" python3; do
    command -v "$py" >/dev/null 2>&1 || continue
    # shellcheck disable=SC2016  # Python source: "$2" is bcrypt's prefix, not a shell expansion
    "$py" -W ignore -c '
import sys
password = sys.stdin.read()
try:
    import bcrypt
    print(bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=8)).decode())
except ImportError:
    import crypt
    hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=2 ** 8))
    if not hashed or not hashed.startswith("$2"):
        sys.exit(1)
    print(hashed)
' 2>/dev/null && return 0
  done
  return 1
}

# Config, htpasswd and the credentials (0600, in a 0700 dir); a new password on every start.
write_registry_config() {
  local password hashed
  mkdir -p "$REGISTRY_DIR/data"
  chmod 700 "$REGISTRY_DIR"
  password=$(head -c 48 /dev/urandom | base64 | tr -d '/+=\n' | head -c 32)
  (( ${#password} == 32 )) || die "could not generate the registry password"
  hashed=$(printf '%s' "$password" | bcrypt_hash) \
    || die "no bcrypt for the registry's htpasswd (Python's bcrypt package, or its crypt module before 3.13): run 'make venv' or 'pip install bcrypt', then try again"
  (
    umask 077
    printf '%s\n' "$REGISTRY_USER" > "$REGISTRY_DIR/username"
    printf '%s' "$password" > "$REGISTRY_DIR/password"
    printf '%s:%s\n' "$REGISTRY_USER" "$hashed" > "$REGISTRY_DIR/htpasswd"
    cat > "$REGISTRY_DIR/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $REGISTRY_DIR/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$REGISTRY_PORT
  secret: $(head -c 48 /dev/urandom | base64 | tr -d '/+=\n' | head -c 32)
  tls:
    certificate: $PKI/registry.crt
    key: $PKI/registry.key
auth:
  htpasswd:
    realm: helm-engine-registry
    path: $REGISTRY_DIR/htpasswd
EOF
  )
}

# Storage starts empty with the cluster, like etcd's: tests push what they pull.
start_registry() {
  rm -rf "$REGISTRY_DIR"
  generate_registry_pki
  write_registry_config
  # Without this the registry exports its traces over OTLP to localhost:4318 and logs each failure.
  OTEL_TRACES_EXPORTER=none start_component registry serve "$REGISTRY_DIR/config.yml"
}

# Serving: /v2/ answers 401 to a request without credentials.
registry_ready() {
  [[ "$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$PKI/ca.crt" "https://127.0.0.1:$REGISTRY_PORT/v2/")" == "401" ]]
}

registry_env() {
  echo "export HELM_ENGINE_REGISTRY=127.0.0.1:$REGISTRY_PORT"
  echo "export HELM_ENGINE_REGISTRY_USERNAME=$REGISTRY_USER"
  echo "export HELM_ENGINE_REGISTRY_PASSWORD_FILE=$REGISTRY_DIR/password"
  echo "export HELM_ENGINE_REGISTRY_CA=$PKI/ca.crt"
}

# One function per component, shared by `up` and `start`: a component restarted alone gets the
# very arguments it had (etcd keeps its data dir, the API server its certificates).
start_etcd() {
  start_component etcd --name helm-engine-etcd --data-dir "$CLUSTER_DIR/etcd-data" \
    --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "helm-engine-etcd=http://127.0.0.1:$ETCD_PEER_PORT" \
    --unsafe-no-fsync --quota-backend-bytes 2147483648 --log-level warn
  wait_for "etcd health" etcd etcd_healthy
}

start_kube_apiserver() {
  start_component kube-apiserver --etcd-servers "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$APISERVER_PORT" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" --client-ca-file "$PKI/ca.crt" \
    --authorization-mode RBAC --service-cluster-ip-range "$SERVICE_CIDR" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --endpoint-reconciler-type none --allow-privileged=true --profiling=false --v=1
  wait_for "/readyz" kube-apiserver apiserver_ready
}

start_kube_controller_manager() {
  start_component kube-controller-manager --kubeconfig "$KUBECONFIG_PATH" \
    --authentication-kubeconfig "$KUBECONFIG_PATH" --authorization-kubeconfig "$KUBECONFIG_PATH" \
    --bind-address 127.0.0.1 --secure-port "$KCM_PORT" --leader-elect=false \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
    --service-cluster-ip-range "$SERVICE_CIDR" --cluster-cidr "$POD_CIDR" --allocate-node-cidrs=false \
    --concurrent-deployment-syncs 10 --concurrent-replicaset-syncs 10 --concurrent-job-syncs 10 \
    --profiling=false --v=1
}

start_kube_scheduler() {
  start_component kube-scheduler --kubeconfig "$KUBECONFIG_PATH" \
    --authentication-kubeconfig "$KUBECONFIG_PATH" --authorization-kubeconfig "$KUBECONFIG_PATH" \
    --bind-address 127.0.0.1 --secure-port "$SCHEDULER_PORT" --leader-elect=false --profiling=false --v=1
}

# The fake node's InternalIP is 192.0.2.10 (TEST-NET-1, RFC 5737): never routed, so no packet
# can leave the machine, and not loopback, which EndpointSlices refuse (hostNetwork pods get
# the node's IP). kwok's server, which the API server calls for logs, exec and port-forward,
# listens on 127.0.0.1 only and is reached through the node's Hostname address, localhost
# (kwok-stages.yaml). Every container's log is the one line of kwok/container.log.
start_kwok() {
  mkdir -p "$CLUSTER_DIR/kwok"
  printf '%s stdout F %s\n' "$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)" \
    "kwok plays the kubelet on this cluster: no container runs, this line stands for its log" \
    > "$CLUSTER_DIR/kwok/container.log"
  cat > "$CLUSTER_DIR/kwok/logs.yaml" <<EOF
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterLogs
metadata:
  name: every-container
spec:
  logs:
  - logsFile: $CLUSTER_DIR/kwok/container.log
EOF
  start_component kwok --kubeconfig "$KUBECONFIG_PATH" \
    --config "$TOOLS_DIR/cluster/kwok-stages.yaml" --config "$CLUSTER_DIR/kwok/logs.yaml" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
    --server-address "127.0.0.1:$KWOK_PORT" --node-port "$KWOK_PORT" --cidr 10.244.0.1/16 --node-ip 192.0.2.10
}

cmd_up() {
  local started c p
  started=$(date +%s.%N)
  "$TOOLS_DIR/toolchain.sh" build kubectl etcd kube-apiserver kube-controller-manager kube-scheduler kwok helm3 helm4 registry
  mkdir -p "$CLUSTER_DIR"
  exec 8>"$CLUSTER_DIR/.lock"
  flock 8
  if cluster_ready; then
    say "already running; reusing it"
    say "kubeconfig: $KUBECONFIG_PATH"
    return 0
  fi
  # Anything left from a half-started cluster is ours to stop before starting anew.
  stop_all quiet
  for c in "${COMPONENTS[@]}"; do
    for p in $(port_of "$c"); do
      if port_listening "$p"; then
        die "$c: port 127.0.0.1:$p is already in use by another program. Stop it, or pick other ports with HELM_ENGINE_PORT_BASE=<n> (ports n+43..n+81)."
      fi
    done
  done
  rm -rf "$CLUSTER_DIR/etcd-data" "$PKI" "$LOGS" "$PIDS" "$CLUSTER_DIR/fingerprint"
  mkdir -p "$LOGS" "$PIDS"
  generate_pki
  write_kubeconfig
  # Started first and waited for last: it needs only the CA, and starts while etcd does.
  start_registry

  start_etcd
  start_kube_apiserver
  start_kube_controller_manager
  start_kube_scheduler
  start_kwok

  kubectl_admin apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Node
metadata:
  name: $NODE_NAME
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/hostname: $NODE_NAME
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
EOF
  wait_for "node $NODE_NAME Ready" kwok node_ready
  # Pods are only admitted once the token controller created the default ServiceAccount.
  wait_for "the default ServiceAccount" kube-controller-manager default_sa_exists
  for c in kube-controller-manager kube-scheduler; do
    running_pid "$c" >/dev/null || { tail -n 15 "$LOGS/$c.log" >&2; die "$c exited (log: $LOGS/$c.log)"; }
  done
  wait_for "the registry's /v2/ endpoint" registry registry_ready
  config_fingerprint > "$CLUSTER_DIR/fingerprint"
  say "ready in $(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$started" "$(date +%s.%N)")s (logs: $LOGS)"
  say "kubeconfig: $KUBECONFIG_PATH"
}

# Stops one component (by its pid file): SIGTERM, SIGKILL after 5 s; with "kill", SIGKILL at
# once (a crash: no graceful shutdown, open connections reset).
stop_one() {
  local c=$1 quiet=${2:-} how=${3:-term} pid
  pid=$(running_pid "$c") || { rm -f "$PIDS/$c.pid"; return 0; }
  if [[ "$how" == kill ]]; then
    kill -KILL "$pid" 2>/dev/null || true
  else
    kill -TERM "$pid" 2>/dev/null || true
  fi
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; sleep 0.2; fi
  rm -f "$PIDS/$c.pid"
  [[ -n "$quiet" ]] || say "stopped $c (pid $pid)"
}

stop_all() {
  local quiet=${1:-} c
  # Reverse start order: kwok and the controllers first, etcd last.
  for c in registry kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
    stop_one "$c" "$quiet"
  done
}

cmd_down() {
  mkdir -p "$CLUSTER_DIR"
  exec 8>"$CLUSTER_DIR/.lock"
  flock 8
  stop_all
  local c p left=0
  for c in "${COMPONENTS[@]}"; do
    for p in $(port_of "$c"); do
      if port_listening "$p"; then echo "cluster: port $p ($c) is still listening" >&2; left=1; fi
    done
  done
  (( left == 0 )) || die "some ports are still in use after stopping"
  say "down"
}

cmd_env() {
  echo "export KUBECONFIG=$KUBECONFIG_PATH"
  echo "export HELM_ENGINE_HELM3=$(bin helm3)"
  echo "export HELM_ENGINE_HELM4=$(bin helm4)"
  echo "export HELM_ENGINE_KUBECTL=$(bin kubectl)"
  registry_env
}

# The components stop, kill and start accept: the control plane and kwok. (The registry starts
# with fresh storage and credentials, so restarting it alone is not the same registry.)
RESTARTABLE=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

restartable() {
  local c
  for c in "${RESTARTABLE[@]}"; do [[ "$c" == "${1:-}" ]] && return 0; done
  die "cannot stop or start '${1:-}' alone (one of: ${RESTARTABLE[*]})"
}

# Fault injection on a running cluster: one component stopped (gracefully, or killed: a crash),
# or started again with the arguments `up` gave it (its state, certificates and ports are
# kept). `start` waits until etcd is healthy or the API server ready; it refuses a component
# that is already running.
cmd_stop() {
  restartable "${1:-}"
  exec 8>"$CLUSTER_DIR/.lock"
  flock 8
  running_pid "$1" >/dev/null || die "$1 is not running"
  stop_one "$1" "" "${2:-term}"
  local p
  for p in $(port_of "$1"); do
    ! port_listening "$p" || die "port $p ($1) is still listening after stopping it"
  done
}

cmd_start() {
  restartable "${1:-}"
  [[ -d "$PIDS" && -f "$KUBECONFIG_PATH" ]] || die "no cluster in $CLUSTER_DIR: run up first"
  exec 8>"$CLUSTER_DIR/.lock"
  flock 8
  ! running_pid "$1" >/dev/null || die "$1 is already running"
  local started
  started=$(date +%s.%N)
  "start_${1//-/_}"
  say "started $1 in $(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$started" "$(date +%s.%N)")s"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  stop) cmd_stop "${2:-}" term ;;
  kill) cmd_stop "${2:-}" kill ;;
  start) cmd_start "${2:-}" ;;
  status) if cluster_ready; then say "up ($KUBECONFIG_PATH)"; else say "not running"; exit 1; fi ;;
  env) cmd_env ;;
  *) die "usage: $0 up | down | status | env | stop COMPONENT | kill COMPONENT | start COMPONENT" ;;
esac

# Sourced by scripts/test and scripts/demo: installs the local services logtide's tests
# and demo start, when missing, from the package registries only and into directories the
# user owns, and exports where they are (LOGTIDE_TEST_SERVICES, LOGTIDE_PYTHON,
# LOGTIDE_MOTO_SERVER; PATH gains the virtual environment's bin directory when one is
# used).
#
# - Python (pip): moto_server and boto3 (Kinesis, S3, DynamoDB), noida-db (Elasticsearch 8
#   API), osmem-server (OpenSearch API), kmock (Kubernetes API). When `python3` already
#   has all of them they are used; otherwise they go into a virtual environment,
#   `$LOGTIDE_TEST_SERVICES/venv`.
# - Node (npm): kinesis-local (kinesis-mock), into `$LOGTIDE_TEST_SERVICES/node_modules`.
#
# `LOGTIDE_TEST_SERVICES` defaults to ~/.cache/logtide-test-services.

export LOGTIDE_TEST_SERVICES="${LOGTIDE_TEST_SERVICES:-${HOME:-/tmp}/.cache/logtide-test-services}"
mkdir -p "$LOGTIDE_TEST_SERVICES"

# pip requirement, then the module that proves it is installed.
PYTHON_PACKAGES=(
  'moto[server]>=5.1,<6' moto
  'boto3>=1.40' boto3
  'noida-db>=0.2.3,<0.3' noida_db
  'osmem-server>=0.1.6,<0.2' osmem_server
  'kmock>=0.8,<0.9' kmock
)
NPM_PACKAGE='kinesis-local@0.6.2'

say() { echo "test services: $*" >&2; }

# The requirements whose module `$1` (a Python interpreter) cannot import.
missing_for() {
  local python=$1 i
  for ((i = 0; i < ${#PYTHON_PACKAGES[@]}; i += 2)); do
    "$python" -c "import ${PYTHON_PACKAGES[i + 1]}" >/dev/null 2>&1 || echo "${PYTHON_PACKAGES[i]}"
  done
}

# moto_server beside interpreter `$1`, or on the PATH for the interpreter on the PATH.
moto_server_for() {
  local dir
  dir="$("$1" -c 'import os, sys; print(os.path.dirname(sys.executable))')"
  if [ -x "$dir/moto_server" ]; then
    echo "$dir/moto_server"
  elif [ "$1" = python3 ] && command -v moto_server >/dev/null 2>&1; then
    command -v moto_server
  fi
}

command -v python3 >/dev/null 2>&1 || { say "python3 is required"; exit 1; }
python=python3
moto=""
if [ -z "$(missing_for python3)" ]; then
  moto="$(moto_server_for python3)"
fi
if [ -z "$moto" ]; then
  venv="$LOGTIDE_TEST_SERVICES/venv"
  if [ ! -x "$venv/bin/python" ]; then
    say "creating $venv"
    python3 -m venv "$venv" || {
      say "python3 -m venv failed: install Python's venv module (Debian, Ubuntu: apt install python3-venv)"
      exit 1
    }
  fi
  python="$venv/bin/python"
  mapfile -t missing < <(missing_for "$python")
  if [ ! -x "$venv/bin/moto_server" ] && [[ ! " ${missing[*]} " =~ moto ]]; then
    missing+=('moto[server]>=5.1,<6')
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    say "pip install ${missing[*]} (into $venv)"
    "$python" -m pip install --quiet --disable-pip-version-check "${missing[@]}"
  fi
  moto="$venv/bin/moto_server"
  export PATH="$venv/bin:$PATH"
fi
export LOGTIDE_PYTHON="$python" LOGTIDE_MOTO_SERVER="$moto"

if [ ! -f "$LOGTIDE_TEST_SERVICES/node_modules/kinesis-local/main.js" ]; then
  command -v npm >/dev/null 2>&1 || { say "npm is required (Node.js) to install $NPM_PACKAGE"; exit 1; }
  say "npm install $NPM_PACKAGE (into $LOGTIDE_TEST_SERVICES)"
  npm install --prefix "$LOGTIDE_TEST_SERVICES" --no-audit --no-fund --loglevel=error "$NPM_PACKAGE"
fi

say "python $python, moto_server $moto, kinesis-local in $LOGTIDE_TEST_SERVICES"

#!/usr/bin/env bash
# Creates (once) the Python virtualenv with the third-party Proxmox clients the tests drive
# against pve-sim (proxmoxer, Ansible) and the reference OpenMetrics parser (prometheus_client)
# that checks /metrics, from the pins in hack/python-requirements.txt, under
# ~/.cache/pve-operator/pyenv/<hash>, and prints its directory as the last line of stdout.
# PVE_OPERATOR_PYENV=/path/to/venv uses an existing one instead.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
say() { printf '[pyenv] %s\n' "$*" >&2; }
die() { printf '[pyenv] error: %s\n' "$*" >&2; exit 1; }

if [[ -n "${PVE_OPERATOR_PYENV:-}" ]]; then
  [[ -x "$PVE_OPERATOR_PYENV/bin/python" ]] || die "PVE_OPERATOR_PYENV=$PVE_OPERATOR_PYENV has no bin/python"
  echo "$PVE_OPERATOR_PYENV"
  exit 0
fi

python=${PYTHON:-python3}
command -v "$python" >/dev/null 2>&1 || die "python3 is needed for the third-party client tests (proxmoxer, Ansible): install Python 3.11 or newer (apt-get install python3 python3-venv), or set PYTHON"
"$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
  || die "$("$python" --version) is too old: Ansible 11 needs Python 3.11 or newer (set PYTHON to another interpreter)"

requirements="$here/python-requirements.txt"
key=$( (cat "$requirements"; "$python" --version) | sha256sum | cut -c1-16)
cache_root=${PVE_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pve-operator}
venv="$cache_root/pyenv/$key"
if [[ -f "$venv/.complete" ]]; then
  say "reusing $venv"
  echo "$venv"
  exit 0
fi

mkdir -p "$cache_root/pyenv"
exec 9>"$cache_root/pyenv/.lock"
flock 9
if [[ -f "$venv/.complete" ]]; then echo "$venv"; exit 0; fi
rm -rf "$venv"
started=$SECONDS
say "creating $venv (first time only; about a minute)"
"$python" -m venv "$venv" || die "could not create a virtualenv: install python3-venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$requirements" >&2 \
  || die "pip install failed; check that PyPI is reachable"
"$venv/bin/python" -c 'import proxmoxer, requests, prometheus_client.openmetrics.parser' || die "proxmoxer or prometheus_client does not import"
"$venv/bin/ansible-doc" community.general.proxmox_kvm >/dev/null 2>&1 \
  || die "community.general.proxmox_kvm is not available in the installed Ansible"
touch "$venv/.complete"
say "ready after $((SECONDS - started))s: $venv"
echo "$venv"

#!/usr/bin/env bash
# Render deploy/kubernetes/ for one environment and apply it to AKS.
#
#   export IMAGE=myacr.azurecr.io/phiguard-api:1.2.3@sha256:...   # from acr-build.sh
#   export AZURE_CLIENT_ID=... AZURE_TENANT_ID=... KEYVAULT_NAME=...  # and the rest
#   scripts/deploy-aks.sh [--out DIR] [--dry-run]
#
# The manifests hold ${NAME} placeholders for exactly the variables listed by
# --print-variables; every one must be set (none is a secret: secrets stay in
# Key Vault and reach the pods through the Secrets Store CSI driver). The
# image must be a reference by digest, so what runs is what was scanned and
# signed. Rendering substitutes only those names (envsubst with an explicit
# list), so any other '$' in the manifests is left alone.
#
# Options:
#   --out DIR            write the rendered manifests to DIR (default: a temporary folder)
#   --context NAME       kubectl context (default: the current one)
#   --dry-run            render, then print the kubectl commands instead of running them
#   --print-variables    print the placeholder names, one per line, and exit
#   -h, --help           this help
set -euo pipefail

readonly MANIFESTS="deploy/kubernetes"
readonly VARIABLES=(
	IMAGE
	AZURE_CLIENT_ID
	AZURE_TENANT_ID
	KEYVAULT_NAME
	AZURE_KEYVAULT_URL
	AZURE_KEYVAULT_KEY_NAME
	AZURE_STORAGE_ACCOUNT_URL
	AZURE_LOGS_ENDPOINT
	AZURE_LOGS_RULE_ID
	AZURE_LOG_ANALYTICS_WORKSPACE_ID
	OIDC_AUDIENCE
	INGRESS_NAMESPACE
	PRIVATE_ENDPOINT_CIDR
)

out="" context="" dry_run=0

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }

die() {
	printf 'deploy-aks: %s\n' "$*" >&2
	exit 2
}

run() {
	printf '+'
	printf ' %q' "$@"
	printf '\n'
	if [[ $dry_run -eq 0 ]]; then
		"$@"
	fi
}

while [[ $# -gt 0 ]]; do
	case $1 in
	--out) [[ $# -ge 2 ]] || die "--out needs a value"; out=$2; shift 2 ;;
	--context) [[ $# -ge 2 ]] || die "--context needs a value"; context=$2; shift 2 ;;
	--dry-run) dry_run=1; shift ;;
	--print-variables) printf '%s\n' "${VARIABLES[@]}"; exit 0 ;;
	-h | --help) usage; exit 0 ;;
	*) die "unknown option: $1 (see --help)" ;;
	esac
done

cd "$(dirname "${BASH_SOURCE[0]}")/.."

missing=()
for v in "${VARIABLES[@]}"; do
	[[ -n ${!v:-} ]] || missing+=("$v")
done
[[ ${#missing[@]} -eq 0 ]] || die "set these variables first: ${missing[*]}"
[[ $IMAGE =~ ^[a-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+(:[A-Za-z0-9._-]+)?@sha256:[0-9a-f]{64}$ ]] ||
	die "IMAGE must be a reference by digest (REGISTRY/REPO:TAG@sha256:...)"
for v in AZURE_CLIENT_ID AZURE_TENANT_ID OIDC_AUDIENCE AZURE_LOG_ANALYTICS_WORKSPACE_ID; do
	[[ ${!v} =~ ^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$ ]] || die "$v must be a GUID"
done
[[ $PRIVATE_ENDPOINT_CIDR =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}$ ]] || die "PRIVATE_ENDPOINT_CIDR must be an IPv4 CIDR"
for v in AZURE_KEYVAULT_URL AZURE_STORAGE_ACCOUNT_URL AZURE_LOGS_ENDPOINT; do
	[[ ${!v} == https://* ]] || die "$v must be an https:// URL"
done
command -v envsubst >/dev/null || die "envsubst is missing (Debian package gettext-base)"

if [[ -z $out ]]; then
	out=$(mktemp -d "${TMPDIR:-/tmp}/phiguard-k8s.XXXXXX")
fi
mkdir -p "$out"

shell_format=""
for v in "${VARIABLES[@]}"; do
	shell_format+="\${$v} "
done
for f in "$MANIFESTS"/*.yaml; do
	dest="$out/${f##*/}"
	envsubst "$shell_format" <"$f" >"$dest"
done
if grep -nE '[$][{][A-Za-z_][A-Za-z0-9_]*[}]' "$out"/*.yaml; then
	die "placeholders left after rendering (listed above): add them to VARIABLES"
fi
printf 'rendered %s into %s\n' "$MANIFESTS" "$out"

kubectl_args=()
[[ -z $context ]] || kubectl_args+=(--context "$context")

# The namespace (with its Pod Security labels) first, then everything else;
# server-side apply with a validating dry run before the real one.
run kubectl "${kubectl_args[@]}" apply --server-side --field-manager=phiguard-deploy -f "$out/namespace.yaml"
run kubectl "${kubectl_args[@]}" apply --server-side --field-manager=phiguard-deploy --dry-run=server -f "$out"
run kubectl "${kubectl_args[@]}" apply --server-side --field-manager=phiguard-deploy -f "$out"
run kubectl "${kubectl_args[@]}" --namespace phiguard rollout status deployment/phiguard-api --timeout=10m

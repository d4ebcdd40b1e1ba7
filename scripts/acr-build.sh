#!/usr/bin/env bash
# Build, tag and push the reference service's image to Azure Container Registry.
#
#   scripts/acr-build.sh --registry myacr --version 1.2.3 [options]
#
# Tags: VERSION (the release) and git-COMMIT (the source it was built from).
# With docker buildx (default) the push carries an SBOM and a SLSA provenance
# attestation (mode=max); with --mode acr the build runs in ACR Tasks
# (az acr build), which needs no local Docker but attaches no attestations.
# The script prints the pushed image by digest (REGISTRY/IMAGE:VERSION@sha256:...):
# deploy that reference, never a bare tag.
#
# Options:
#   --registry NAME        ACR name (myacr) or login server (myacr.azurecr.io)   [required]
#   --version VERSION      release version, e.g. 1.2.3 (semver, no leading v)     [required]
#   --image NAME           repository name (default: phiguard-api)
#   --commit SHA           source commit (default: git rev-parse HEAD)
#   --created RFC3339      build date for the OCI label (default: the commit's date)
#   --mode buildx|acr      build locally with buildx, or in ACR Tasks (default: buildx)
#   --platform LIST        target platforms (default: linux/amd64)
#   --builder-digest SHA   pin the builder base image to this digest (sha256:...)
#   --runtime-digest SHA   pin the runtime base image to this digest (sha256:...)
#   --sign KEY             sign the pushed digest with notation and this key ID
#   --lock                 make the VERSION tag read-only in ACR after the push
#   --dry-run              print the commands instead of running them
#   -h, --help             this help
#
# Signing: with the Notation CLI and its Azure Key Vault plugin, --sign KEY
# runs `notation sign --signature-format cose --key KEY IMAGE@DIGEST`
# (the key added first with `notation key add KEY --plugin azure-kv --id <key-id>`);
# verify with `notation verify IMAGE@DIGEST` and enforce it in AKS with
# Ratify + Azure Policy (docs/operator-guide.md, step 4).
set -euo pipefail

readonly DOCKERFILE="examples/api/Dockerfile"
readonly BUILDER_IMAGE="golang:1.26.8-bookworm"
readonly RUNTIME_IMAGE="gcr.io/distroless/static-debian12:nonroot"

registry="" version="" image="phiguard-api" commit="" created="" mode="buildx"
platform="linux/amd64" builder_digest="" runtime_digest="" sign_key="" lock=0 dry_run=0

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }

die() {
	printf 'acr-build: %s\n' "$*" >&2
	exit 2
}

# run prints the command (shell-quoted) and runs it unless --dry-run.
run() {
	printf '+'
	printf ' %q' "$@"
	printf '\n'
	if [[ $dry_run -eq 0 ]]; then
		"$@"
	fi
}

need_value() { [[ $# -ge 2 && -n $2 && $2 != -* ]] || die "$1 needs a value"; }

while [[ $# -gt 0 ]]; do
	case $1 in
	--registry) need_value "$@"; registry=$2; shift 2 ;;
	--version) need_value "$@"; version=$2; shift 2 ;;
	--image) need_value "$@"; image=$2; shift 2 ;;
	--commit) need_value "$@"; commit=$2; shift 2 ;;
	--created) need_value "$@"; created=$2; shift 2 ;;
	--mode) need_value "$@"; mode=$2; shift 2 ;;
	--platform) need_value "$@"; platform=$2; shift 2 ;;
	--builder-digest) need_value "$@"; builder_digest=$2; shift 2 ;;
	--runtime-digest) need_value "$@"; runtime_digest=$2; shift 2 ;;
	--sign) need_value "$@"; sign_key=$2; shift 2 ;;
	--lock) lock=1; shift ;;
	--dry-run) dry_run=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) die "unknown option: $1 (see --help)" ;;
	esac
done

[[ -n $registry ]] || die "--registry is required"
[[ -n $version ]] || die "--version is required"
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] || die "--version must be semver (1.2.3 or 1.2.3-rc.1)"
[[ $image =~ ^[a-z0-9]+([._/-][a-z0-9]+)*$ ]] || die "--image must be a lowercase repository name"
[[ $mode == buildx || $mode == acr ]] || die "--mode must be buildx or acr"
for d in "$builder_digest" "$runtime_digest"; do
	[[ -z $d || $d =~ ^sha256:[0-9a-f]{64}$ ]] || die "digests must be sha256:<64 hex>"
done

# The script works from the repository root (the build context).
cd "$(dirname "${BASH_SOURCE[0]}")/.."

registry_name=${registry%%.*}
login_server=$registry
[[ $login_server == *.* ]] || login_server="$registry.azurecr.io"
[[ $registry_name =~ ^[a-zA-Z0-9]{5,50}$ ]] || die "--registry: an ACR name has 5-50 letters and digits"

if [[ -z $commit ]]; then
	commit=$(git rev-parse HEAD)
	if [[ -n $(git status --porcelain --untracked-files=no) ]]; then
		die "the work tree has uncommitted changes: build from a clean commit"
	fi
fi
[[ $commit =~ ^[0-9a-f]{7,40}$ ]] || die "--commit must be a git commit hash"
short=${commit:0:12}
if [[ -z $created ]]; then
	created=$(git log -1 --format=%cI "$commit")
fi

repo="$login_server/$image"
version_tag="$repo:$version"
commit_tag="$repo:git-$short"

# Digest pinning: a temporary copy of the Dockerfile whose FROM lines carry
# the digests; the committed file stays readable (tags only).
dockerfile=$DOCKERFILE
if [[ -n $builder_digest || -n $runtime_digest ]]; then
	dockerfile=$(mktemp "${TMPDIR:-/tmp}/Dockerfile.pinned.XXXXXX")
	trap 'rm -f "$dockerfile"' EXIT
	sed_args=()
	[[ -z $builder_digest ]] || sed_args+=(-e "s|^FROM $BUILDER_IMAGE |FROM $BUILDER_IMAGE@$builder_digest |")
	[[ -z $runtime_digest ]] || sed_args+=(-e "s|^FROM $RUNTIME_IMAGE\$|FROM $RUNTIME_IMAGE@$runtime_digest|")
	printf '+'
	printf ' %q' sed "${sed_args[@]}" "$DOCKERFILE"
	printf ' > %q\n' "$dockerfile"
	sed "${sed_args[@]}" "$DOCKERFILE" >"$dockerfile"
	if [[ -n $builder_digest ]] && ! grep -q "^FROM $BUILDER_IMAGE@$builder_digest " "$dockerfile"; then
		die "the Dockerfile's builder FROM line no longer matches $BUILDER_IMAGE"
	fi
	if [[ -n $runtime_digest ]] && ! grep -q "^FROM $RUNTIME_IMAGE@$runtime_digest\$" "$dockerfile"; then
		die "the Dockerfile's runtime FROM line no longer matches $RUNTIME_IMAGE"
	fi
fi

build_args=(--build-arg "VERSION=$version" --build-arg "REVISION=$commit" --build-arg "CREATED=$created")

case $mode in
buildx)
	run az acr login --name "$registry_name"
	run docker buildx build \
		--file "$dockerfile" \
		--platform "$platform" \
		"${build_args[@]}" \
		--label "org.opencontainers.image.version=$version" \
		--label "org.opencontainers.image.revision=$commit" \
		--tag "$version_tag" \
		--tag "$commit_tag" \
		--sbom=true \
		--provenance=mode=max \
		--push \
		.
	;;
acr)
	# ACR Tasks builds in Azure from the uploaded context (.dockerignore applies).
	run az acr build \
		--registry "$registry_name" \
		--file "$dockerfile" \
		--platform "$platform" \
		"${build_args[@]}" \
		--image "$image:$version" \
		--image "$image:git-$short" \
		.
	;;
esac

# The digest the registry now serves for the version tag.
digest_cmd=(az acr repository show --name "$registry_name" --image "$image:$version" --query digest --output tsv)
if [[ $dry_run -eq 1 ]]; then
	run "${digest_cmd[@]}"
	digest="sha256:DIGEST"
else
	printf '+'
	printf ' %q' "${digest_cmd[@]}"
	printf '\n'
	digest=$("${digest_cmd[@]}")
	[[ $digest =~ ^sha256:[0-9a-f]{64}$ ]] || die "unexpected digest from the registry"
fi

if [[ -n $sign_key ]]; then
	run notation sign --signature-format cose --key "$sign_key" "$repo@$digest"
fi
if [[ $lock -eq 1 ]]; then
	# A release tag never moves: later pushes to it fail.
	run az acr repository update --name "$registry_name" --image "$image:$version" --write-enabled false
fi

printf 'image: %s@%s\n' "$version_tag" "$digest"

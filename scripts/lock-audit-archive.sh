#!/usr/bin/env bash
# Lock the audit archive's time-based retention (WORM) policy.
#
#   scripts/lock-audit-archive.sh --resource-group rg-phiguard --account stphiguard [--dry-run]
#
# deploy/containerapps/main.bicep creates the policy on the audit-archive
# container unlocked (ARM cannot lock it). Locking is irreversible: once
# locked, the retention period can only be extended, the policy cannot be
# deleted, and no blob can be deleted or overwritten before it expires, not
# even by the account owner. The script checks the policy first (at least
# 2192 days, protected append writes allowed), then locks it with its ETag.
#
# Options:
#   --resource-group NAME   resource group of the storage account   [required]
#   --account NAME          storage account                          [required]
#   --container NAME        archive container (default: audit-archive)
#   --min-days N            smallest acceptable retention (default: 2192)
#   --dry-run               print the commands instead of running them
#   -h, --help              this help
set -euo pipefail

group="" account="" container="audit-archive" min_days=2192 dry_run=0

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }

die() {
	printf 'lock-audit-archive: %s\n' "$*" >&2
	exit 2
}

show() {
	printf '+'
	printf ' %q' "$@"
	printf '\n'
}

while [[ $# -gt 0 ]]; do
	case $1 in
	--resource-group) [[ $# -ge 2 ]] || die "--resource-group needs a value"; group=$2; shift 2 ;;
	--account) [[ $# -ge 2 ]] || die "--account needs a value"; account=$2; shift 2 ;;
	--container) [[ $# -ge 2 ]] || die "--container needs a value"; container=$2; shift 2 ;;
	--min-days) [[ $# -ge 2 ]] || die "--min-days needs a value"; min_days=$2; shift 2 ;;
	--dry-run) dry_run=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) die "unknown option: $1 (see --help)" ;;
	esac
done
[[ -n $group ]] || die "--resource-group is required"
[[ $account =~ ^[a-z0-9]{3,24}$ ]] || die "--account must be a storage account name"
[[ $container =~ ^[a-z0-9]([a-z0-9-]{1,61}[a-z0-9])$ ]] || die "--container must be a container name"
[[ $min_days =~ ^[0-9]+$ && $min_days -ge 2192 ]] || die "--min-days must be at least 2192"

policy_cmd=(az storage container immutability-policy show
	--resource-group "$group" --account-name "$account" --container-name "$container"
	--query "[state, immutabilityPeriodSinceCreationInDays, allowProtectedAppendWrites, etag]" --output tsv)
show "${policy_cmd[@]}"
if [[ $dry_run -eq 1 ]]; then
	state=Unlocked days=$min_days appends=true etag=ETAG
else
	read -r state days appends etag < <("${policy_cmd[@]}" | tr '\n' ' ')
fi

[[ $days =~ ^[0-9]+$ && $days -ge $min_days ]] || die "retention is $days days, below $min_days"
[[ ${appends,,} == true ]] || die "allowProtectedAppendWrites is not true: the audit sink could not append"
if [[ $state == Locked ]]; then
	printf 'already locked: %s/%s, %s days\n' "$account" "$container" "$days"
	exit 0
fi

lock_cmd=(az storage container immutability-policy lock
	--resource-group "$group" --account-name "$account" --container-name "$container" --if-match "$etag")
show "${lock_cmd[@]}"
if [[ $dry_run -eq 0 ]]; then
	"${lock_cmd[@]}" >/dev/null
	read -r state < <("${policy_cmd[@]}" | head -n 1)
	[[ $state == Locked ]] || die "the policy is not locked after the lock call (state: $state)"
fi
printf 'locked: %s/%s, %s days, protected append writes allowed\n' "$account" "$container" "$days"

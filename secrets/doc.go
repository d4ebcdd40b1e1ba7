// Package secrets loads a service's configuration secrets (database
// passwords, signing keys, API keys) at start-up and keeps them out of logs,
// errors and dumps.
//
// # Sources
//
// A [Loader] asks its sources in the order given; the first that holds a
// key wins, and [Loader.Provenance] tells which source gave each key (never
// the value):
//
//   - [FromEnv]: the process environment.
//   - [FromDir]: one file per secret, as the Secrets Store CSI driver and
//     Kubernetes secret volumes mount them; re-read on every refresh.
//   - [FromKeyVault]: Azure Key Vault through the caller's
//     *azsecrets.Client; values cached in memory, disabled, expired and
//     not-yet-valid secrets skipped, refresh fetching only what changed.
//   - [FromDotEnv]: a git-ignored .env file for a developer's laptop, parsed
//     with github.com/joho/godotenv. A loader in production mode (APP_ENV=
//     production, or [Options].Mode) refuses it at [NewLoader].
//
// Custom sources implement [Source] (and optionally [Refresher] and
// [Checker]).
//
// # Keys
//
// Keys have one canonical form, DB_PASSWORD (see [ValidKey]). Key Vault
// allows only letters, digits and '-', so DB_PASSWORD is looked up as the
// secret DB-PASSWORD ([VaultName]); [KeyVaultOptions] adds a prefix and
// per-key overrides, and NewLoader refuses a mapping that puts two keys on
// one secret.
//
// # Values
//
// A [Value] prints, logs and marshals as [Redacted] (fmt with every verb,
// log/slog, encoding/json, encoding/xml, encoding/gob, and inside structs,
// maps and slices); [Value.Reveal] and [Value.Bytes] give the secret at the
// point of use.
//
// [Loader.Bind] fills a struct from `secret:"KEY,required"` or
// `secret:"KEY,default=..."` tags, fetching keys in parallel within a bound
// and reporting every missing key in one error. No error, log line or panic
// message produced by this package contains a secret value: parse failures
// name the key and the expected type, and godotenv's messages (which quote
// the file) are replaced by a line number.
//
// # Key Vault credentials and retries
//
// The caller builds the client, choosing the credential:
//
//   - azidentity.NewDefaultAzureCredential: environment, workload identity,
//     managed identity, then developer tools (Azure CLI, azd). In
//     production set AZURE_TOKEN_CREDENTIALS=prod so that it only tries the
//     deployed-service credentials and never a developer's login.
//   - azidentity.NewManagedIdentityCredential: Container Apps, App Service,
//     VMs; pass the client ID for a user-assigned identity.
//   - azidentity.NewWorkloadIdentityCredential: AKS with workload identity
//     (the federated token file and client ID come from the environment).
//
// Retries are the client's: azcore's retry policy retries 408, 429, 500,
// 502, 503 and 504 with exponential back-off (by default 3 retries, 800 ms
// base delay, 60 s cap) and honours Retry-After. Tune it with
// azsecrets.ClientOptions.Retry; a context deadline bounds the whole call.
//
// # Refresh and readiness
//
// [Loader.Refresh] (or the background refresher started by [Loader.Start]
// with [Options].RefreshInterval and jitter) re-resolves the loaded keys and
// calls the [Loader.OnChange] callbacks for each rotated value. The
// refresher stops when its context ends or at [Loader.Close].
// [Loader.Check] has the func(context.Context) error shape of a readiness
// check.
package secrets

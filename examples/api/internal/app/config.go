// Package app composes the reference service from phiguard's packages:
// it reads the configuration, loads secrets, and builds the store, the
// audit trail, the logger, authentication, health checks and the HTTP
// handler, in development (local, no Azure account) or Azure mode.
package app

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Config is the service's non-secret configuration, read from the
// environment (see docs/configuration table in examples/api/README.md).
// Secrets are loaded separately through package secrets.
type Config struct {
	Production bool   // APP_ENV=production
	Addr       string // ADDR
	DataDir    string // DATA_DIR
	ModelPath  string // MODEL_PATH
	// ModelSHA256 is the hex digest the model file must have; the binary
	// embeds it, so a changed model needs a new, reviewed build.
	ModelSHA256 string
	SecretsDir  string // SECRETS_DIR: CSI-mounted secret files
	DotEnvPath  string // .env in the working directory (development only)

	KeyVaultURL      string // AZURE_KEYVAULT_URL
	StorageURL       string // AZURE_STORAGE_ACCOUNT_URL
	StorageContainer string // AZURE_STORAGE_CONTAINER
	// StorageConnectionString (AZURE_STORAGE_CONNECTION_STRING) points the
	// blob store at Azurite in development; refused in production, where a
	// connection string would mean an account key in the environment.
	StorageConnectionString string
	// ArchiveContainer (AZURE_AUDIT_ARCHIVE_CONTAINER) is the immutable
	// container the audit trail is archived to, on the same account as the
	// store: the system of record beyond one pod.
	ArchiveContainer string
	KeyVaultKeyName  string // AZURE_KEYVAULT_KEY_NAME
	LogsEndpoint     string // AZURE_LOGS_ENDPOINT
	LogsRuleID       string // AZURE_LOGS_RULE_ID
	LogsStream       string // AZURE_LOGS_STREAM
	WorkspaceID      string // AZURE_LOG_ANALYTICS_WORKSPACE_ID

	OIDCIssuer   string // OIDC_ISSUER
	OIDCAudience string // OIDC_AUDIENCE

	DrainDelay time.Duration // SHUTDOWN_DRAIN_DELAY
	Grace      time.Duration // SHUTDOWN_GRACE

	Instance string // HOSTNAME: the replica, for audit observer and trail origin
}

// ConfigFromEnv reads the configuration through getenv (os.Getenv in
// production, a map in tests). It names a bad variable, never its value.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	get := func(k, def string) string {
		if v := strings.TrimSpace(getenv(k)); v != "" {
			return v
		}
		return def
	}
	c := Config{
		Addr:                    get("ADDR", "127.0.0.1:8080"),
		DataDir:                 get("DATA_DIR", "var"),
		ModelPath:               get("MODEL_PATH", defaultModelPath()),
		SecretsDir:              get("SECRETS_DIR", ""),
		DotEnvPath:              ".env",
		KeyVaultURL:             get("AZURE_KEYVAULT_URL", ""),
		StorageURL:              get("AZURE_STORAGE_ACCOUNT_URL", ""),
		StorageContainer:        get("AZURE_STORAGE_CONTAINER", "phi"),
		StorageConnectionString: get("AZURE_STORAGE_CONNECTION_STRING", ""),
		ArchiveContainer:        get("AZURE_AUDIT_ARCHIVE_CONTAINER", ""),
		KeyVaultKeyName:         get("AZURE_KEYVAULT_KEY_NAME", ""),
		LogsEndpoint:            get("AZURE_LOGS_ENDPOINT", ""),
		LogsRuleID:              get("AZURE_LOGS_RULE_ID", ""),
		LogsStream:              get("AZURE_LOGS_STREAM", "Custom-PhiguardAudit_CL"),
		WorkspaceID:             get("AZURE_LOG_ANALYTICS_WORKSPACE_ID", ""),
		OIDCIssuer:              get("OIDC_ISSUER", ""),
		OIDCAudience:            get("OIDC_AUDIENCE", ""),
		Instance:                get("HOSTNAME", "local"),
	}
	switch env := strings.ToLower(get("APP_ENV", "development")); env {
	case "production":
		c.Production = true
	case "development", "dev", "test":
	default:
		return c, errors.New("app: APP_ENV must be development or production")
	}
	var err error
	if c.DrainDelay, err = duration(get, "SHUTDOWN_DRAIN_DELAY", "5s"); err != nil {
		return c, err
	}
	if c.Grace, err = duration(get, "SHUTDOWN_GRACE", "20s"); err != nil {
		return c, err
	}
	return c, c.validate()
}

func duration(get func(k, def string) string, key, def string) (time.Duration, error) {
	d, err := time.ParseDuration(get(key, def))
	if err != nil || d < 0 {
		return 0, fmt.Errorf("app: %s must be a non-negative duration such as 5s", key)
	}
	return d, nil
}

func (c *Config) validate() error {
	if (c.OIDCIssuer == "") != (c.OIDCAudience == "") {
		return errors.New("app: set both OIDC_ISSUER and OIDC_AUDIENCE, or neither")
	}
	if (c.LogsEndpoint == "") != (c.LogsRuleID == "") {
		return errors.New("app: set both AZURE_LOGS_ENDPOINT and AZURE_LOGS_RULE_ID, or neither")
	}
	if c.ArchiveContainer != "" && !c.AzureStorage() {
		return errors.New("app: AZURE_AUDIT_ARCHIVE_CONTAINER needs AZURE_STORAGE_ACCOUNT_URL")
	}
	if c.ArchiveContainer != "" && !c.AzureStorage() {
		return errors.New("app: AZURE_AUDIT_ARCHIVE_CONTAINER needs AZURE_STORAGE_ACCOUNT_URL")
	}
	if c.KeyVaultKeyName != "" && c.KeyVaultURL == "" {
		return errors.New("app: AZURE_KEYVAULT_KEY_NAME needs AZURE_KEYVAULT_URL")
	}
	if c.Production {
		// Development conveniences are refused outright in production.
		switch {
		case c.StorageConnectionString != "":
			return errors.New("app: AZURE_STORAGE_CONNECTION_STRING is for development (Azurite); production uses AZURE_STORAGE_ACCOUNT_URL with a managed identity")
		case c.OIDCIssuer == "":
			return errors.New("app: production needs OIDC_ISSUER and OIDC_AUDIENCE (development auth is refused)")
		case c.StorageURL == "":
			return errors.New("app: production needs AZURE_STORAGE_ACCOUNT_URL (the folder store is for development)")
		case c.KeyVaultKeyName == "" || c.KeyVaultURL == "":
			return errors.New("app: production needs AZURE_KEYVAULT_URL and AZURE_KEYVAULT_KEY_NAME")
		}
	}
	return nil
}

// AzureStorage reports whether blobs go to Azure Blob Storage.
func (c *Config) AzureStorage() bool { return c.StorageURL != "" || c.StorageConnectionString != "" }

// defaultModelPath finds the model beside the binary (the image's
// /app/model) or, under `go run`, in the source tree.
func defaultModelPath() string {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "model", "readmission.json")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return filepath.Join("examples", "api", "model", "readmission.json")
}

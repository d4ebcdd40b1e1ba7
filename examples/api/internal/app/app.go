package app

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/monitor/azquery"
	"github.com/Azure/azure-sdk-for-go/sdk/monitor/ingestion/azlogs"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/phiguard/phiguard/auditlog"
	"github.com/phiguard/phiguard/examples/api/internal/auth"
	"github.com/phiguard/phiguard/examples/api/internal/model"
	"github.com/phiguard/phiguard/examples/api/internal/server"
	"github.com/phiguard/phiguard/health"
	"github.com/phiguard/phiguard/phimask"
	"github.com/phiguard/phiguard/secrets"
	"github.com/phiguard/phiguard/storage"
)

// Deps are the outside world the app talks to. Tests replace parts of it;
// nil fields mean the real thing.
type Deps struct {
	// Credential for Azure clients; default azidentity.DefaultAzureCredential
	// (managed or workload identity in the cloud; set
	// AZURE_TOKEN_CREDENTIALS=prod there).
	Credential azcore.TokenCredential
	// Transports per Azure service (tests pass the SDKs' fake servers).
	KeyVaultTransport, KeysTransport, BlobTransport, LogsTransport, QueryTransport policy.Transporter
	// BlobConnectionString replaces AZURE_STORAGE_ACCOUNT_URL + Credential
	// (Azurite in local work and tests).
	BlobConnectionString string
	// OIDCClient fetches the issuer's discovery document and keys.
	OIDCClient *http.Client
	// Stdout receives the JSON logs and the audit stream.
	Stdout io.Writer
}

// App is the composed service.
type App struct {
	Config  Config
	Handler http.Handler
	Health  *health.Health
	Logger  *slog.Logger
	Audit   *auditlog.Logger
	Store   *storage.Store
	// AuditPublicKey verifies the local trail's checkpoints.
	AuditPublicKey ed25519.PublicKey
	auditDir       string // set for a development run with an ephemeral audit key
	closers        []func() error
}

// appSecrets are the secrets the service needs. Which are required depends
// on the mode, so Bind leaves them optional and New checks them.
type appSecrets struct {
	PHITokenKey     secrets.Value `secret:"PHI_TOKEN_KEY"`
	AuditSigningKey secrets.Value `secret:"AUDIT_SIGNING_KEY"`
	StorageKEK      secrets.Value `secret:"STORAGE_KEK"`
	HealthToken     secrets.Value `secret:"HEALTH_TOKEN"`
}

// New builds the service. It returns an error naming what is wrong, never a
// secret; on error everything it opened is closed.
func New(ctx context.Context, cfg Config, deps *Deps) (app *App, err error) {
	d := Deps{}
	if deps != nil {
		d = *deps
	}
	if d.Stdout == nil {
		d.Stdout = os.Stdout
	}
	a := &App{Config: cfg}
	defer func() {
		if err != nil {
			_ = a.Close()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("app: data folder: %w", err)
	}

	// A bootstrap logger (no key yet) for what happens before secrets load:
	// already behind phimask.
	a.Logger = slog.New(phimask.NewHandler(slog.NewJSONHandler(d.Stdout, nil), nil))

	if cfg.KeyVaultURL != "" {
		if _, err := azureCredential(&d); err != nil {
			return nil, err
		}
	}
	sec, loader, err := a.loadSecrets(ctx, cfg, &d)
	if err != nil {
		return nil, err
	}
	tokenKey, err := a.keyOrEphemeral(sec.PHITokenKey, "PHI_TOKEN_KEY", 32, cfg.Production)
	if err != nil {
		return nil, err
	}
	a.Logger = slog.New(phimask.NewHandler(slog.NewJSONHandler(d.Stdout, nil), &phimask.Options{Key: tokenKey})).
		With("service", "phiguard-api", "instance", cfg.Instance)

	m, err := model.Load(cfg.ModelPath, cfg.ModelSHA256)
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}

	if err := a.openAudit(cfg, sec, tokenKey, &d); err != nil {
		return nil, err
	}
	if err := a.openStore(cfg, sec, &d); err != nil {
		return nil, err
	}
	verifier, err := a.verifier(ctx, cfg, &d)
	if err != nil {
		return nil, err
	}
	var query server.AuditQuery = &TrailQuery{Dir: a.TrailDir(), Public: a.AuditPublicKey, Audit: a.Audit}
	if cfg.WorkspaceID != "" {
		if query, err = workspaceQuery(cfg, tokenKey, &d); err != nil {
			return nil, err
		}
	}

	api, err := server.New(server.Config{
		Logger: a.Logger, Store: a.Store, Audit: a.Audit, Query: query,
		Verifier: verifier, Model: m, TokenKey: tokenKey,
		Service: "phiguard-api", Instance: cfg.Instance,
	})
	if err != nil {
		return nil, err
	}

	h, err := health.New(&health.Options{
		DetailsToken: healthToken(sec.HealthToken),
		Logger:       a.Logger,
		Component:    health.Component{Name: "phiguard-api", Version: m.Version},
	})
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	a.Health = h
	for name, fn := range map[string]func(context.Context) error{
		"secrets": loader.Check, "storage": a.Store.Check, "audit": a.Audit.Check,
	} {
		if err := h.AddReadiness(name, fn); err != nil {
			return nil, fmt.Errorf("app: %w", err)
		}
	}
	// Startup waits for the first contact with the store, so a slow first
	// connection delays readiness instead of tripping liveness restarts.
	if err := h.AddStartup("storage", a.Store.Check); err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	mux := http.NewServeMux()
	h.Mount(mux)
	mux.Handle("/", api)
	a.Handler = mux
	a.Logger.Info("service configured",
		"mode", mode(cfg), "storage", storageKind(cfg), "model", m.Name, "model_version", m.Version,
		"secret_sources", provenance(loader))
	return a, nil
}

func (a *App) loadSecrets(ctx context.Context, cfg Config, d *Deps) (*appSecrets, *secrets.Loader, error) {
	sources := []secrets.Source{secrets.FromEnv()}
	if cfg.SecretsDir != "" {
		sources = append(sources, secrets.FromDir(cfg.SecretsDir))
	}
	if cfg.KeyVaultURL != "" {
		opts := &azsecrets.ClientOptions{}
		opts.Transport = d.KeyVaultTransport
		c, err := azsecrets.NewClient(cfg.KeyVaultURL, d.Credential, opts)
		if err != nil {
			return nil, nil, fmt.Errorf("app: Key Vault client: %w", err)
		}
		sources = append(sources, secrets.FromKeyVault(c, nil))
	}
	if !cfg.Production {
		if _, err := os.Stat(cfg.DotEnvPath); err == nil {
			sources = append(sources, secrets.FromDotEnv(cfg.DotEnvPath))
		}
	}
	mode := secrets.ModeDevelopment
	if cfg.Production {
		mode = secrets.ModeProduction
	}
	loader, err := secrets.NewLoader(&secrets.Options{Mode: mode, Logger: a.Logger}, sources...)
	if err != nil {
		return nil, nil, fmt.Errorf("app: %w", err)
	}
	a.closers = append(a.closers, loader.Close)
	var s appSecrets
	if err := loader.Bind(ctx, &s); err != nil {
		return nil, nil, fmt.Errorf("app: %w", err)
	}
	if cfg.Production {
		var missing []string
		for k, v := range map[string]secrets.Value{"PHI_TOKEN_KEY": s.PHITokenKey, "AUDIT_SIGNING_KEY": s.AuditSigningKey} {
			if v.IsZero() {
				missing = append(missing, k)
			}
		}
		if cfg.KeyVaultKeyName == "" && s.StorageKEK.IsZero() {
			missing = append(missing, "STORAGE_KEK")
		}
		if len(missing) > 0 {
			return nil, nil, fmt.Errorf("app: production needs secrets %s", strings.Join(slices.Sorted(slices.Values(missing)), ", "))
		}
	}
	return &s, loader, nil
}

// keyOrEphemeral decodes a base64 key of at least n bytes, or in development
// makes a random one for this run with a loud warning.
func (a *App) keyOrEphemeral(v secrets.Value, name string, n int, production bool) ([]byte, error) {
	if v.IsZero() {
		if production {
			return nil, fmt.Errorf("app: secret %s is required in production", name)
		}
		a.Logger.Warn("DEVELOPMENT: secret not configured; using an ephemeral key for this run only. "+
			"Data written now cannot be read after a restart. Set it in .env (see examples/api/.env.example).",
			"secret", name)
		k := make([]byte, n)
		if _, err := rand.Read(k); err != nil {
			return nil, fmt.Errorf("app: random key: %w", err)
		}
		return k, nil
	}
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v.Reveal()))
	if err != nil || len(k) < n {
		return nil, fmt.Errorf("app: secret %s must be base64 of at least %d bytes", name, n)
	}
	return k, nil
}

// TrailDir is the folder of the local audit trail.
func (a *App) TrailDir() string {
	if a.auditDir != "" {
		return a.auditDir
	}
	return filepath.Join(a.Config.DataDir, "audit")
}

func (a *App) openAudit(cfg Config, sec *appSecrets, tokenKey []byte, d *Deps) error {
	seed, err := a.keyOrEphemeral(sec.AuditSigningKey, "AUDIT_SIGNING_KEY", ed25519.SeedSize, cfg.Production)
	if err != nil {
		return err
	}
	if len(seed) != ed25519.SeedSize {
		return fmt.Errorf("app: secret AUDIT_SIGNING_KEY must be a %d-byte Ed25519 seed", ed25519.SeedSize)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	a.AuditPublicKey = priv.Public().(ed25519.PublicKey)
	if sec.AuditSigningKey.IsZero() {
		// An ephemeral key cannot extend the trail of an earlier run (it
		// would not verify): each such run gets a trail of its own.
		a.auditDir = filepath.Join(cfg.DataDir, "audit-ephemeral", time.Now().UTC().Format("20060102T150405.000000000"))
	}
	file, err := auditlog.NewFileSink(a.TrailDir(), &auditlog.FileOptions{
		SigningKey: priv,
		Origin:     "phiguard-audit/api/" + cfg.Instance,
	})
	if err != nil {
		return fmt.Errorf("app: audit trail: %w", err)
	}
	sinks := []auditlog.Sink{file, auditlog.NewWriterSink(d.Stdout)}
	closeSinks := func() {
		for _, s := range sinks {
			_ = s.Close()
		}
	}
	if cfg.ArchiveContainer != "" {
		archive, err := archiveSink(cfg, priv, d)
		if err != nil {
			closeSinks()
			return err
		}
		sinks = append(sinks, archive)
	}
	if cfg.LogsEndpoint != "" {
		ingest, err := ingestionSink(cfg, d, a.Logger)
		if err != nil {
			closeSinks()
			return err
		}
		sinks = append(sinks, ingest)
	}
	l, err := auditlog.New(&auditlog.Options{
		PseudonymKey: tokenKey,
		Observer:     auditlog.Observer{Service: "phiguard-api", Instance: cfg.Instance},
	}, sinks...)
	if err != nil {
		closeSinks()
		return fmt.Errorf("app: audit: %w", err)
	}
	a.Audit = l
	a.closers = append(a.closers, l.Close)
	return nil
}

func (a *App) openStore(cfg Config, sec *appSecrets, d *Deps) error {
	var kek storage.KeyWrapper
	if cfg.KeyVaultKeyName != "" {
		opts := &azkeys.ClientOptions{}
		opts.Transport = d.KeysTransport
		kc, err := azkeys.NewClient(cfg.KeyVaultURL, d.Credential, opts)
		if err != nil {
			return fmt.Errorf("app: Key Vault keys client: %w", err)
		}
		k, err := storage.NewKeyVaultKey(kc, cfg.KeyVaultKeyName, "")
		if err != nil {
			return fmt.Errorf("app: %w", err)
		}
		kek = k
	} else {
		raw, err := a.keyOrEphemeral(sec.StorageKEK, "STORAGE_KEK", 32, cfg.Production)
		if err != nil {
			return err
		}
		if len(raw) != 32 {
			return errors.New("app: secret STORAGE_KEK must be 32 bytes (AES-256)")
		}
		k, err := storage.NewLocalKey("local:storage-kek", raw)
		if err != nil {
			return fmt.Errorf("app: %w", err)
		}
		kek = k
	}
	if d.BlobConnectionString == "" && cfg.StorageConnectionString != "" {
		d.BlobConnectionString = cfg.StorageConnectionString
		// Azurite starts empty: make the container on first use.
		if err := createContainer(d.BlobConnectionString, cfg.StorageContainer); err != nil {
			return err
		}
	}
	if !cfg.AzureStorage() && d.BlobConnectionString == "" {
		s, err := storage.NewDirStore(filepath.Join(cfg.DataDir, "objects"), kek, nil)
		if err != nil {
			return fmt.Errorf("app: %w", err)
		}
		a.Store = s
		return nil
	}
	var cc *container.Client
	var err error
	if d.BlobConnectionString != "" {
		opts := &container.ClientOptions{}
		opts.Transport = d.BlobTransport
		cc, err = container.NewClientFromConnectionString(d.BlobConnectionString, cfg.StorageContainer, opts)
	} else {
		cred, cerr := azureCredential(d)
		if cerr != nil {
			return cerr
		}
		opts := &container.ClientOptions{}
		opts.Transport = d.BlobTransport
		cc, err = container.NewClient(strings.TrimSuffix(cfg.StorageURL, "/")+"/"+cfg.StorageContainer, cred, opts)
	}
	if err != nil {
		return fmt.Errorf("app: blob client: %w", err)
	}
	s, err := storage.NewBlobStore(cc, kek, nil)
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	a.Store = s
	return nil
}

func (a *App) verifier(ctx context.Context, cfg Config, d *Deps) (auth.Verifier, error) {
	if cfg.OIDCIssuer != "" {
		v, err := auth.NewOIDCVerifier(ctx, cfg.OIDCIssuer, cfg.OIDCAudience, &auth.OIDCOptions{HTTPClient: d.OIDCClient})
		if err != nil {
			return nil, fmt.Errorf("app: %w", err)
		}
		return auth.NewCache(v, nil), nil
	}
	if cfg.Production {
		return nil, errors.New("app: development auth is refused in production")
	}
	a.Logger.Warn("DEVELOPMENT: accepting tokens signed by the local development key; " +
		"get one with `go run ./examples/api token -role clinician`")
	dev, err := auth.OpenDev(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	return auth.NewCache(dev, nil), nil
}

// Close flushes the audit trail and closes everything New opened, in
// reverse order.
func (a *App) Close() error {
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i]())
	}
	a.closers = nil
	return errors.Join(errs...)
}

func healthToken(v secrets.Value) string {
	if v.IsZero() {
		return ""
	}
	return v.Reveal()
}

func mode(c Config) string {
	if c.Production {
		return "production"
	}
	return "development"
}

func storageKind(c Config) string {
	if c.AzureStorage() {
		return "azure-blob"
	}
	return "folder"
}

func provenance(l *secrets.Loader) []string {
	var out []string
	for _, o := range l.Provenance() {
		out = append(out, o.Key+"="+o.Source)
	}
	return out
}

// azureCredential returns d's credential, making the default one on first
// need (managed or workload identity in Azure).
func azureCredential(d *Deps) (azcore.TokenCredential, error) {
	if d.Credential != nil {
		return d.Credential, nil
	}
	cred, err := azidentity.NewDefaultAzureCredential(nil)
	if err != nil {
		return nil, fmt.Errorf("app: Azure credential: %w", err)
	}
	d.Credential = cred
	return cred, nil
}

func ingestionSink(cfg Config, d *Deps, logger *slog.Logger) (auditlog.Sink, error) {
	cred, err := azureCredential(d)
	if err != nil {
		return nil, err
	}
	opts := &azlogs.ClientOptions{}
	opts.Transport = d.LogsTransport
	c, err := azlogs.NewClient(cfg.LogsEndpoint, cred, opts)
	if err != nil {
		return nil, fmt.Errorf("app: Logs Ingestion client: %w", err)
	}
	s, err := auditlog.NewIngestionSink(c, cfg.LogsRuleID, cfg.LogsStream, &auditlog.IngestionOptions{
		SpoolDir: filepath.Join(cfg.DataDir, "audit-spool"),
		Logger:   logger, // failures feed the "audit delivery" alert
	})
	if err != nil {
		return nil, fmt.Errorf("app: audit ingestion: %w", err)
	}
	return s, nil
}

func workspaceQuery(cfg Config, tokenKey []byte, d *Deps) (server.AuditQuery, error) {
	cred, err := azureCredential(d)
	if err != nil {
		return nil, err
	}
	opts := &azquery.LogsClientOptions{}
	opts.Transport = d.QueryTransport
	c, err := azquery.NewLogsClient(cred, opts)
	if err != nil {
		return nil, fmt.Errorf("app: Log Analytics client: %w", err)
	}
	// MaxRows matches the endpoint's largest limit: a broader question
	// fails instead of pulling a whole table into memory.
	r, err := auditlog.NewReporter(c, cfg.WorkspaceID, &auditlog.ReporterOptions{PseudonymKey: tokenKey, MaxRows: 10_000})
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	return &WorkspaceQuery{Reporter: r}, nil
}

func createContainer(conn, name string) error {
	c, err := container.NewClientFromConnectionString(conn, name, nil)
	if err != nil {
		return fmt.Errorf("app: blob client: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Create(ctx, nil); err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
		return fmt.Errorf("app: create container: %w", err)
	}
	return nil
}

// archiveSink appends this replica's trail to the immutable archive
// container: Record returns once the event is in the append blob, so a pod
// that dies loses no acknowledged event.
func archiveSink(cfg Config, key ed25519.PrivateKey, d *Deps) (auditlog.Sink, error) {
	var cc *container.Client
	var err error
	if conn := firstNonEmpty(d.BlobConnectionString, cfg.StorageConnectionString); conn != "" {
		opts := &container.ClientOptions{}
		opts.Transport = d.BlobTransport
		cc, err = container.NewClientFromConnectionString(conn, cfg.ArchiveContainer, opts)
	} else {
		cred, cerr := azureCredential(d)
		if cerr != nil {
			return nil, cerr
		}
		opts := &container.ClientOptions{}
		opts.Transport = d.BlobTransport
		cc, err = container.NewClient(strings.TrimSuffix(cfg.StorageURL, "/")+"/"+cfg.ArchiveContainer, cred, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("app: archive client: %w", err)
	}
	s, err := auditlog.NewArchiveSink(cc, &auditlog.ArchiveOptions{
		SigningKey: key,
		Service:    "phiguard-api",
		Instance:   cfg.Instance,
		SpoolDir:   filepath.Join(cfg.DataDir, "audit-archive-spool"),
	})
	if err != nil {
		return nil, fmt.Errorf("app: audit archive: %w", err)
	}
	return s, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

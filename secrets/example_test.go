package secrets_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/phiguard/phiguard/secrets"
)

func ExampleValue() {
	pw := secrets.NewValue("example-password")
	cfg := struct {
		User     string
		Password secrets.Value
	}{"app", pw}

	fmt.Printf("%v\n", cfg)
	fmt.Printf("%+v\n", cfg)
	j, _ := json.Marshal(cfg)
	fmt.Println(string(j))
	slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})).Info("connecting", "password", pw)
	fmt.Println(len(pw.Reveal()))
	// Output:
	// {app [REDACTED]}
	// {User:app Password:[REDACTED]}
	// {"User":"app","Password":"[REDACTED]"}
	// level=INFO msg=connecting password=[REDACTED]
	// 16
}

func ExampleLoader_Bind() {
	// A developer's .env file (never used in production).
	dir, _ := os.MkdirTemp("", "example")
	defer func() { _ = os.RemoveAll(dir) }()
	env := filepath.Join(dir, ".env")
	_ = os.WriteFile(env, []byte("DB_PASSWORD=example-password\nPORT=8443\n"), 0o600)

	l, err := secrets.NewLoader(&secrets.Options{Mode: secrets.ModeDevelopment}, secrets.FromDotEnv(env))
	if err != nil {
		log.Fatal(err)
	}
	var cfg struct {
		DBPassword secrets.Value `secret:"DB_PASSWORD,required"`
		Port       int           `secret:"PORT,default=8080"`
		Timeout    time.Duration `secret:"TIMEOUT,default=30s"`
	}
	if err := l.Bind(context.Background(), &cfg); err != nil {
		log.Fatal(err)
	}
	fmt.Println(cfg.DBPassword, cfg.Port, cfg.Timeout)
	for _, o := range l.Provenance() {
		fmt.Println(o.Key, "from", filepath.Base(o.Source))
	}
	// Output:
	// [REDACTED] 8443 30s
	// DB_PASSWORD from .env
	// PORT from .env
	// TIMEOUT from default
}

func ExampleLoader_Bind_missing() {
	l, err := secrets.NewLoader(&secrets.Options{Mode: secrets.ModeDevelopment}, secrets.FromDir(os.TempDir()))
	if err != nil {
		log.Fatal(err)
	}
	var cfg struct {
		DB  secrets.Value `secret:"EXAMPLE_DB_PASSWORD,required"`
		API secrets.Value `secret:"EXAMPLE_API_KEY,required"`
	}
	err = l.Bind(context.Background(), &cfg)
	fmt.Println(err)
	// Output:
	// secrets: bind: missing required keys: EXAMPLE_DB_PASSWORD, EXAMPLE_API_KEY
}

func ExampleLoader_OnChange() {
	// A directory laid out as the Secrets Store CSI driver mounts it.
	dir, _ := os.MkdirTemp("", "csi")
	defer func() { _ = os.RemoveAll(dir) }()
	_ = os.WriteFile(filepath.Join(dir, "db-password"), []byte("v1"), 0o600)

	l, err := secrets.NewLoader(nil, secrets.FromDir(dir))
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	l.OnChange(func(c secrets.Change) {
		fmt.Println("rotated:", c.Key, c.Value) // c.Value prints redacted
	})
	if _, err := l.Get(context.Background(), "DB_PASSWORD"); err != nil {
		log.Fatal(err)
	}

	// The driver rotates the file; a refresh (Start runs them on a timer)
	// notices and calls back.
	_ = os.WriteFile(filepath.Join(dir, "db-password"), []byte("v2"), 0o600)
	if err := l.Refresh(context.Background()); err != nil {
		log.Fatal(err)
	}
	// Output:
	// rotated: DB_PASSWORD [REDACTED]
}

// In production: the environment first (for overrides), then the files the
// CSI driver mounts, then Key Vault, refreshed every 5 minutes. The client
// carries the credential and the retry policy.
func ExampleFromKeyVault() {
	// DefaultAzureCredential tries environment, workload identity, managed
	// identity, then developer tools; set AZURE_TOKEN_CREDENTIALS=prod in
	// production so it never falls back to developer credentials.
	cred, err := azidentity.NewDefaultAzureCredential(nil)
	if err != nil {
		log.Fatal(err)
	}
	client, err := azsecrets.NewClient("https://my-vault.vault.azure.net", cred, &azsecrets.ClientOptions{
		ClientOptions: azcore.ClientOptions{
			// azcore retries 408, 429 and 5xx; these are its defaults.
			Retry: policy.RetryOptions{MaxRetries: 3, RetryDelay: 800 * time.Millisecond, MaxRetryDelay: 60 * time.Second},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	l, err := secrets.NewLoader(&secrets.Options{RefreshInterval: 5 * time.Minute},
		secrets.FromEnv(),
		secrets.FromDir("/mnt/secrets-store"),
		secrets.FromKeyVault(client, nil),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = l.Close() }()

	ctx := context.Background()
	var cfg struct {
		DBPassword secrets.Value `secret:"DB_PASSWORD,required"`
	}
	if err := l.Bind(ctx, &cfg); err != nil {
		log.Fatal(err) // names every missing key, never a value
	}
	if err := l.Start(ctx); err != nil {
		log.Fatal(err)
	}
	// Hand l.Check to the readiness probe: func(context.Context) error.
	_ = l.Check
}

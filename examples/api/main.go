// Command api is phiguard's reference healthcare AI service: patients,
// clinical documents and a readmission risk model behind OpenID Connect,
// with PHI-safe logs, an encrypted store, a tamper-evident audit trail and
// health probes. See README.md beside this file.
//
//	go run ./examples/api                           # serve (development mode)
//	go run ./examples/api token -role clinician     # print a development token
//	/app/api healthcheck                            # the container's HEALTHCHECK
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/phiguard/phiguard/examples/api/internal/app"
	"github.com/phiguard/phiguard/examples/api/internal/auth"
	"github.com/phiguard/phiguard/health"
	"github.com/phiguard/phiguard/secrets"
)

// modelSHA256 pins the model file this build serves.
//
//go:embed model/readmission.json.sha256
var modelSHA256 string

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	getenv, err := withDotEnv(ctx, getenv)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	cfg, err := app.ConfigFromEnv(getenv)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	cfg.ModelSHA256 = modelSHA256
	cfg.DotEnvPath = dotEnvPath(getenv)
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, cfg, stdout, stderr)
	case "healthcheck":
		// Distroless images have no shell or curl: the binary probes itself.
		return health.Healthcheck(ctx, health.LoopbackURL(cfg.Addr, "/livez"), args, stderr)
	case "token":
		return token(cfg, args, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "api: unknown command %q (serve, healthcheck, token)\n", cmd)
		return 2
	}
}

func serve(ctx context.Context, cfg app.Config, stdout, stderr io.Writer) int {
	a, err := app.New(ctx, cfg, &app.Deps{Stdout: stdout})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	srv := &http.Server{
		Addr:              cfg.Addr,
		Handler:           a.Handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       5 * time.Minute, // documents stream in
		WriteTimeout:      5 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(a.Logger.Handler(), slog.LevelWarn),
	}
	// Listen before logging, so the line names the bound address (ADDR may
	// ask for port 0: tests start the service that way, free of port races).
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		a.Logger.Error("cannot listen", "error", err)
		_ = a.Close()
		return 1
	}
	a.Logger.Info("listening", "listen", ln.Addr().String())
	err = health.Serve(ctx, srv, a.Health, &health.ServeOptions{
		DrainDelay: drainDelay(cfg.DrainDelay), GracePeriod: cfg.Grace, Logger: a.Logger, Listener: ln,
	})
	cerr := a.Close()
	if err != nil || cerr != nil {
		a.Logger.Error("stopped with an error", "error", errors.Join(err, cerr))
		return 1
	}
	a.Logger.Info("stopped")
	return 0
}

// dotEnvPath is DOTENV_PATH, else .env in the working directory, else
// examples/api/.env (where .env.example sits, for `go run ./examples/api`
// from the repository root).
func dotEnvPath(getenv func(string) string) string {
	if p := getenv("DOTENV_PATH"); p != "" {
		return p
	}
	for _, p := range []string{".env", filepath.Join("examples", "api", ".env")} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ".env"
}

// withDotEnv lets a development .env supply settings (ADDR, DATA_DIR, ...)
// that the environment does not set. It is parsed by package secrets, whose
// errors name a line, never a value. In production .env is never read.
func withDotEnv(ctx context.Context, getenv func(string) string) (func(string) string, error) {
	if strings.EqualFold(strings.TrimSpace(getenv("APP_ENV")), "production") {
		return getenv, nil
	}
	path := dotEnvPath(getenv)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return getenv, nil // no .env: the environment alone
	}
	l, err := secrets.NewLoader(&secrets.Options{Mode: secrets.ModeDevelopment}, secrets.FromDotEnv(path))
	if err != nil {
		return nil, err
	}
	return func(k string) string {
		if v := getenv(k); v != "" {
			return v
		}
		if v, err := l.Get(ctx, k); err == nil {
			return v.Reveal()
		}
		return ""
	}, nil
}

// drainDelay maps "0s" to health's "no delay" (negative).
func drainDelay(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

func token(cfg app.Config, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	role := fs.String("role", "clinician", "clinician, auditor or service")
	subject := fs.String("sub", "dev-user", "subject (a workforce ID, never a patient's)")
	ttl := fs.Duration("ttl", 8*time.Hour, "lifetime")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if cfg.Production {
		fmt.Fprintln(stderr, "api: development tokens are refused in production")
		return 2
	}
	switch auth.Role(*role) {
	case auth.RoleClinician, auth.RoleAuditor, auth.RoleService:
	default:
		fmt.Fprintln(stderr, "api: -role must be clinician, auditor or service")
		return 2
	}
	d, err := auth.OpenDev(cfg.DataDir)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	tok, err := d.Token(*subject, auth.Role(*role), *ttl)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	// Only the token on stdout, so that TOKEN=$(go run ./examples/api token) works.
	fmt.Fprintln(stdout, tok)
	return 0
}

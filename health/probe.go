package health

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// ErrUnhealthy is returned by Probe when the endpoint answered with a
// status other than 2xx or 3xx.
var ErrUnhealthy = errors.New("health: unhealthy")

var errInvalidURL = errors.New("health: probe: invalid URL (want http[s]://host/path)")

// Exit codes of Healthcheck. Docker's HEALTHCHECK reads 0 as healthy and 1
// as unhealthy and reserves 2, so a usage error uses EX_USAGE instead.
const (
	ExitHealthy   = 0
	ExitUnhealthy = 1
	ExitUsage     = 64
)

// probeBodyLimit: the public body is a few bytes; reading a little lets the
// connection be reused, reading more would only let a confused server hold us.
const probeBodyLimit = 4 << 10

// Probe sends GET url and returns nil for a 2xx or 3xx answer (as the
// kubelet does), an error wrapping ErrUnhealthy for any other status, or the
// transport error. Redirects are not followed. ctx bounds the whole
// exchange; give it a deadline. The response body is never returned or
// included in an error.
func Probe(ctx context.Context, rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errInvalidURL
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("health: probe: %w", err)
	}
	req.Header.Set("Accept", mediaJSON)
	req.Header.Set("User-Agent", "phiguard-healthcheck")
	client := &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{
			Proxy:             nil, // a self-probe must never go through a proxy
			DisableKeepAlives: true,
		},
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("health: probe %s: %w", u.Redacted(), unwrapURLError(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, probeBodyLimit))
	if resp.StatusCode < 200 || resp.StatusCode > 399 {
		return fmt.Errorf("%w: %s answered %d", ErrUnhealthy, u.Redacted(), resp.StatusCode)
	}
	return nil
}

// unwrapURLError drops *url.Error's copy of the URL (already reported once).
func unwrapURLError(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err
	}
	return err
}

// Healthcheck implements a "healthcheck" subcommand for images without a
// shell or curl (distroless): the binary probes its own endpoint and the
// return value is the process exit code.
//
//	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
//		os.Exit(health.Healthcheck(ctx, health.LoopbackURL(addr, "/readyz"), os.Args[2:], os.Stderr))
//	}
//
// args may override the target with -url URL and the time-out with
// -timeout DURATION (default 3s). It returns ExitHealthy, ExitUnhealthy
// (including connection refused and time-out) or ExitUsage, and writes one
// line to stderr when not healthy. stderr may be nil.
func Healthcheck(ctx context.Context, defaultURL string, args []string, stderr io.Writer) int {
	if stderr == nil {
		stderr = io.Discard
	}
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	target := fs.String("url", defaultURL, "endpoint to probe")
	timeout := fs.Duration("timeout", 3*time.Second, "time-out for the whole probe")
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	if fs.NArg() > 0 || *timeout <= 0 || *target == "" {
		fmt.Fprintln(stderr, "healthcheck: usage: healthcheck [-url URL] [-timeout DURATION]")
		return ExitUsage
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if err := Probe(ctx, *target); err != nil {
		fmt.Fprintln(stderr, "healthcheck:", err)
		if errors.Is(err, errInvalidURL) {
			return ExitUsage // a configuration mistake, not a health verdict
		}
		return ExitUnhealthy
	}
	return ExitHealthy
}

// LoopbackURL turns a listen address (":8080", "0.0.0.0:8080", "[::]:8080",
// "127.0.0.1:8080") into the URL the process uses to probe itself, e.g.
// "http://127.0.0.1:8080/readyz". A wildcard or empty host becomes
// 127.0.0.1. path must start with "/".
func LoopbackURL(addr, path string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host, port = addr, "80"
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return (&url.URL{Scheme: "http", Host: net.JoinHostPort(host, port), Path: path}).String()
}

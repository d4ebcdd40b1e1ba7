// Package checks provides generic dependency checks for package health:
// an HTTP GET, a TCP dial, a database ping and a mounted volume. Each
// constructor returns a func(context.Context) error to pass to
// (*health.Health).AddReadiness or AddStartup; the context carries the
// check's time-out.
//
// Error texts name what failed (status code, host:port, path, missing
// permission) but never a URL's user info or query, a request or response
// body, or file contents: they are shown to authorised callers of the
// detailed health endpoints and logged on status changes.
//
// health-go ships checks too (github.com/hellofresh/health-go/v5/checks/...,
// for Postgres, Redis, RabbitMQ and more); they have the same function type
// and can be registered directly. Its HTTP check is not reused here: it
// uses http.DefaultClient and treats any answer below 500 (including 404)
// as healthy.
package checks

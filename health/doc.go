// Package health serves liveness, readiness and startup probes that are
// safe to expose and cheap to call, and shuts a server down without cutting
// requests.
//
// # Model
//
// Checks are plain func(context.Context) error values; a component hands
// over its Check method (health never imports other phiguard packages).
// They are registered per endpoint:
//
//   - AddLiveness: process-level checks only (a wedged event loop, a memory
//     ceiling). A failing liveness probe restarts the container, so a
//     dependency outage must never reach it.
//   - AddReadiness: dependencies (database, key vault, storage). Failing
//     takes the replica out of the load balancer until it recovers.
//   - AddStartup: one-time conditions (migrations, warm caches). Once they
//     all pass, /startupz latches to 200 and they stop running.
//
// Each check has a time-out (WithTimeout) and is critical unless marked
// NonCritical (a failing non-critical check is reported as "warn" in
// details and keeps the endpoint at 200).
//
// Between Start and Stop (Serve calls both unless the checks are already
// running), every check runs in the background on its interval, in its own
// goroutine, with a context that carries its time-out. Handlers never run checks: they serve a response
// precomputed after each run, so serving a probe is an atomic load and a
// Write, and a probe storm never reaches a dependency. A check that panics
// is recorded as failing (ErrCheckPanic, panic value dropped); one that
// outlives its time-out is recorded as failing (ErrCheckTimeout) and is not
// started again until it has returned, so a hung dependency costs one
// goroutine, not one per interval.
//
// # Status codes
//
// pass and warn answer 200, fail answers 503. Until a check's first result
// its status is unknown: liveness then answers 200 (restarting a process
// because its checks have not run yet helps nobody), readiness and startup
// answer 503 (no traffic to a replica not known to work). Readiness also
// answers 503 until startup has passed and from Drain on.
//
// # What callers see
//
// The public handlers (Mount, LiveHandler, ReadyHandler, StartupHandler)
// answer {"status":"pass"} or {"status":"fail"} with Cache-Control:
// no-store, as application/health+json (draft-inadarei-api-health-check)
// when the Accept header asks for it, application/json otherwise. No check
// name, error text, host name or version is ever in a public response.
// Per-check details (status, critical, last duration, time of the last run,
// since when the status holds, last error text cut to 512 bytes) are given
// for ?verbose to a caller presenting "Authorization: Bearer <token>" with
// Options.DetailsToken (compared in constant time), and always by
// InternalHandler, meant for a listener reachable only from inside the pod.
// ?exclude=NAME works as in the Kubernetes API server; it cannot override a
// drain or the startup gate.
//
// Status changes (per check and per endpoint) are logged through
// Options.Logger and passed to Options.OnChange. Log records carry the
// check's error text; checks must not put secrets or PHI in their errors.
//
// # Shutdown and self-probe
//
// Serve runs an *http.Server until SIGTERM/SIGINT or the end of its
// context, then drains (readiness 503, liveness 200), keeps serving for the
// drain delay (default 5 s) so load balancers notice, and calls
// srv.Shutdown within the grace period, so in-flight requests complete.
// Probe and Healthcheck let a distroless binary probe itself
// (HEALTHCHECK CMD ["/app","healthcheck"]).
//
// # Relation to health-go
//
// github.com/hellofresh/health-go/v5 is a dependency for its check model:
// a check is registered as a health-go Config (name, time-out, SkipOnErr
// for non-critical, CheckFunc) in a per-endpoint health-go registry, which
// validates names and rejects duplicates; Component is health-go's type;
// health-go's own check constructors (Postgres, Redis, ...) plug in
// unchanged; and its handler is the baseline of this package's benchmark.
// Its request path is not used: health-go v5 runs every check on every
// request while holding one mutex, so concurrent probes queue behind the
// slowest check, and its JSON reports raw error strings to any caller. In
// v5.5.4, the newest version available to this module, a check that
// outlives its time-out also leaks a goroutine (its result is sent on an
// unbuffered channel nobody reads any more) and the time-out is not passed
// to the check's context. The background runner here sets its own context
// deadline per run, uses a buffered result channel and never overlaps runs
// of one check, so it depends on none of that being fixed.
//
// All methods of Health are safe for concurrent use.
package health

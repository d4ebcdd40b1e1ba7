package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Serve defaults.
const (
	// DefaultDrainDelay is long enough for kube-proxy / Container Apps
	// ingress to observe the failing readiness probe (or the endpoint
	// removal) and stop sending new connections.
	DefaultDrainDelay = 5 * time.Second
	// DefaultGracePeriod leaves DrainDelay + GracePeriod within the
	// Kubernetes default terminationGracePeriodSeconds of 30 s.
	DefaultGracePeriod = 20 * time.Second
)

// ErrShutdownTimeout is returned by Serve when in-flight requests did not
// finish within the grace period and the remaining connections were closed.
var ErrShutdownTimeout = errors.New("health: shutdown grace period exceeded")

// ServeOptions configures Serve. A nil *ServeOptions means all defaults.
type ServeOptions struct {
	// DrainDelay is how long Serve keeps accepting and serving requests
	// after Drain, before it stops listening. Zero means DefaultDrainDelay;
	// a negative value means no delay.
	DrainDelay time.Duration
	// GracePeriod bounds srv.Shutdown: how long in-flight requests get to
	// finish once the listener is closed. Zero means DefaultGracePeriod.
	GracePeriod time.Duration
	// Signals that start the shutdown. Nil means SIGTERM and SIGINT; an
	// empty non-nil slice means none (only ctx ends the server). A second
	// signal during the drain delay skips the rest of it.
	Signals []os.Signal
	// Listener to serve on. Nil means net.Listen("tcp", srv.Addr)
	// (":http" when Addr is empty). Serve closes it.
	Listener net.Listener
	// Logger receives the shutdown milestones. Nil means no logging.
	Logger *slog.Logger
}

// Serve runs srv until a signal arrives or ctx ends, then shuts down
// without cutting a request:
//
//  1. h.Drain(): /readyz answers 503, /livez stays 200;
//  2. it waits DrainDelay while still serving, so load balancers notice;
//  3. srv.Shutdown: stop listening, let in-flight requests finish within
//     GracePeriod; past that, srv.Close and ErrShutdownTimeout.
//
// Serve also runs h's checks (Start) if they are not running yet, and stops
// them on return if it started them. If srv.TLSConfig is set, Serve serves
// TLS with the certificates configured there. It returns nil after a clean
// shutdown, or the error that stopped the server. srv.Handler is expected to
// include h's handlers (see Mount); Serve does not add them.
func Serve(ctx context.Context, srv *http.Server, h *Health, opts *ServeOptions) error {
	var o ServeOptions
	if opts != nil {
		o = *opts
	}
	if o.DrainDelay == 0 {
		o.DrainDelay = DefaultDrainDelay
	}
	if o.GracePeriod <= 0 {
		o.GracePeriod = DefaultGracePeriod
	}
	if o.Signals == nil {
		o.Signals = []os.Signal{syscall.SIGTERM, syscall.SIGINT}
	}
	logf := func(msg string, args ...any) {
		if o.Logger != nil {
			o.Logger.Info(msg, args...)
		}
	}

	// Subscribe before listening so a signal sent as soon as the port is
	// open is not lost.
	sigs := make(chan os.Signal, 2)
	if len(o.Signals) > 0 {
		signal.Notify(sigs, o.Signals...)
		defer signal.Stop(sigs)
	}

	ln := o.Listener
	if ln == nil {
		addr := srv.Addr
		if addr == "" {
			addr = ":http"
		}
		var err error
		ln, err = (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("health: listen: %w", err)
		}
	}

	// Checks keep running through the drain: liveness must stay truthful
	// until the process exits.
	h.mu.Lock()
	ownRunner := !h.runningLocked()
	h.mu.Unlock()
	if ownRunner {
		h.Start(context.WithoutCancel(ctx))
		defer h.Stop()
	}

	served := make(chan error, 1)
	go func() {
		if srv.TLSConfig != nil {
			served <- srv.ServeTLS(ln, "", "")
		} else {
			served <- srv.Serve(ln)
		}
	}()

	select {
	case err := <-served:
		return fmt.Errorf("health: serve: %w", err)
	case s := <-sigs:
		logf("health: shutdown requested", slog.String("signal", s.String()))
	case <-ctx.Done():
		logf("health: shutdown requested", slog.String("cause", "context done"))
	}

	h.Drain()
	if o.DrainDelay > 0 {
		logf("health: draining", slog.Duration("delay", o.DrainDelay))
		t := time.NewTimer(o.DrainDelay)
		select {
		case <-t.C:
		case s := <-sigs:
			t.Stop()
			logf("health: second signal, ending drain early", slog.String("signal", s.String()))
		case err := <-served:
			t.Stop()
			return fmt.Errorf("health: serve: %w", err)
		}
	}

	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.GracePeriod)
	defer cancel()
	logf("health: shutting down", slog.Duration("grace", o.GracePeriod))
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close() // past the grace period: the orchestrator would SIGKILL anyway
		if serr := <-served; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
			return fmt.Errorf("%w: %w (serve: %w)", ErrShutdownTimeout, err, serr)
		}
		return fmt.Errorf("%w: %w", ErrShutdownTimeout, err)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("health: serve: %w", err)
	}
	logf("health: shutdown complete")
	return nil
}

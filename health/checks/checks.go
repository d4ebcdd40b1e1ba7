package checks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
)

// HTTPOptions configures HTTPGet. A nil *HTTPOptions means all defaults.
type HTTPOptions struct {
	// Client sends the request. Nil means a client that does not follow
	// redirects and does not use a proxy from the environment.
	Client *http.Client
	// Header is added to the request (for example an API key header).
	// Header values never appear in errors.
	Header http.Header
	// OK decides whether a status code is healthy. Nil means 200-299.
	OK func(status int) bool
}

// HTTPGet returns a check that sends GET rawURL and fails unless the answer
// is healthy (2xx by default). The response body is read up to 4 KiB and
// discarded. rawURL is validated when the check runs; errors show only its
// scheme and host.
func HTTPGet(rawURL string, opts *HTTPOptions) func(context.Context) error {
	var o HTTPOptions
	if opts != nil {
		o = *opts
	}
	if o.Client == nil {
		o.Client = &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Transport:     &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1},
		}
	}
	if o.OK == nil {
		o.OK = func(s int) bool { return s >= 200 && s <= 299 }
	}
	u, perr := url.Parse(rawURL)
	where := "invalid URL"
	if perr == nil {
		where = u.Scheme + "://" + u.Host
	}
	return func(ctx context.Context) error {
		if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errors.New("checks: http get: invalid URL")
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return fmt.Errorf("checks: http get %s: cannot build request", where)
		}
		for k, vs := range o.Header {
			for _, v := range vs {
				req.Header.Add(k, v)
			}
		}
		resp, err := o.Client.Do(req)
		if err != nil {
			// *url.Error repeats the full URL, query included: keep only its cause.
			if ue, ok := errors.AsType[*url.Error](err); ok {
				err = ue.Err
			}
			return fmt.Errorf("checks: http get %s: %w", where, err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		if !o.OK(resp.StatusCode) {
			return fmt.Errorf("checks: http get %s: status %d", where, resp.StatusCode)
		}
		return nil
	}
}

// TCPDial returns a check that opens a TCP connection to addr (host:port)
// and closes it at once.
func TCPDial(addr string) func(context.Context) error {
	return func(ctx context.Context) error {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("checks: tcp dial: %w", err)
		}
		return conn.Close()
	}
}

// Pinger is what Ping needs; *sql.DB, *sql.Conn and many driver clients
// implement it.
type Pinger interface {
	PingContext(ctx context.Context) error
}

// Ping returns a check that calls db.PingContext. With *sql.DB this takes a
// connection from the pool (opening one if needed) and verifies it.
func Ping(db Pinger) func(context.Context) error {
	return func(ctx context.Context) error {
		if db == nil {
			return errors.New("checks: ping: nil database")
		}
		if err := db.PingContext(ctx); err != nil {
			return fmt.Errorf("checks: ping: %w", err)
		}
		return nil
	}
}

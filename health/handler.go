package health

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Media types served. health+json is draft-inadarei-api-health-check.
const (
	mediaJSON       = "application/json"
	mediaHealthJSON = "application/health+json"
	mediaText       = "text/plain; charset=utf-8"
)

// Header values shared by every response. net/http only reads header
// values and these slices have len == cap (an Add by a middleware copies),
// so sharing them saves several allocations per probe.
var (
	hdrJSON       = []string{mediaJSON}
	hdrHealthJSON = []string{mediaHealthJSON}
	hdrNoStore    = []string{"no-store"}
	hdrNosniff    = []string{"nosniff"}
	hdrAllow      = []string{"GET, HEAD"}
)

type handler struct {
	h        *Health
	kind     Kind
	internal bool // details without a token: only for a separate, private listener
}

// LiveHandler serves the liveness endpoint. See ReadyHandler for the
// request and response contract.
func (h *Health) LiveHandler() http.Handler { return &handler{h: h, kind: KindLiveness} }

// ReadyHandler serves the readiness endpoint from the cached results; it
// never runs a check.
//
// A plain GET or HEAD answers 200 or 503 with {"status":"pass"} or
// {"status":"fail"}, as application/health+json when the Accept header asks
// for it and application/json otherwise, always with Cache-Control: no-store.
// No check name, error text, host name or version appears in it.
//
// Query parameters, as in the Kubernetes API server:
//   - exclude=NAME (repeatable or comma-separated) leaves the named checks
//     out of the verdict for this request. It cannot override Drain or the
//     startup gate.
//   - verbose returns per-check details (status, critical, duration of the
//     last run, its time, since when the status holds, last error) when the
//     request carries "Authorization: Bearer <Options.DetailsToken>".
//     Without a valid token verbose is ignored and the public body is sent.
//     Details are JSON (health+json on request) or, when Accept asks for
//     text/plain only, the Kubernetes "[+]name ok" listing.
//
// Status codes: pass and warn (a non-critical check fails) give 200; fail
// gives 503; unknown (no result yet) gives 503, and so does readiness until
// startup has passed and from Drain on.
func (h *Health) ReadyHandler() http.Handler { return &handler{h: h, kind: KindReadiness} }

// StartupHandler serves the startup endpoint: 503 until every critical
// startup check has passed once, 200 from then on. See ReadyHandler for the
// request and response contract.
func (h *Health) StartupHandler() http.Handler { return &handler{h: h, kind: KindStartup} }

// Mount registers the three public handlers on mux at /livez, /readyz and
// /startupz. Like any ServeMux registration, it panics (in ServeMux) if one
// of these patterns is already registered.
func (h *Health) Mount(mux *http.ServeMux) {
	mux.Handle("/livez", h.LiveHandler())
	mux.Handle("/readyz", h.ReadyHandler())
	mux.Handle("/startupz", h.StartupHandler())
}

// InternalHandler serves /livez, /readyz and /startupz with per-check
// details (including last error texts) for every caller, no token needed.
// Serve it only on a listener that is not reachable from outside the pod
// or host (for example 127.0.0.1 or a cluster-internal port behind a
// network policy). Query parameters work as on ReadyHandler.
func (h *Health) InternalHandler() http.Handler {
	mux := http.NewServeMux()
	for k := range kindCount {
		mux.Handle("/"+k.String(), &handler{h: h, kind: k, internal: true})
	}
	return mux
}

func (hd *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header()["Allow"] = hdrAllow
		w.Header()["Cache-Control"] = hdrNoStore
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	v := hd.h.views[hd.kind].Load()
	if r.URL.RawQuery == "" && !hd.internal {
		// The hot path: every probe of a healthy service lands here.
		writePublic(w, r, v.code, v.body, v.clen)
		return
	}
	hd.serveQuery(w, r, v)
}

func writePublic(w http.ResponseWriter, r *http.Request, code int, body []byte, clen []string) {
	hdr := w.Header()
	if acceptsHealthJSON(r) {
		hdr["Content-Type"] = hdrHealthJSON
	} else {
		hdr["Content-Type"] = hdrJSON
	}
	hdr["Cache-Control"] = hdrNoStore
	hdr["X-Content-Type-Options"] = hdrNosniff
	hdr["Content-Length"] = clen
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body) // a failed write means the prober went away
	}
}

func acceptsHealthJSON(r *http.Request) bool {
	for _, a := range r.Header["Accept"] {
		if containsFold(a, mediaHealthJSON) {
			return true
		}
	}
	return false
}

// wantsText: the client asked for text/plain and no JSON flavour.
func wantsText(r *http.Request) bool {
	text := false
	for _, a := range r.Header["Accept"] {
		if containsFold(a, "json") {
			return false
		}
		if containsFold(a, "text/plain") {
			text = true
		}
	}
	return text
}

// containsFold is strings.Contains ignoring ASCII case, without allocating.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// authorized checks the bearer token. Both sides are hashed first so the
// comparison is constant-time regardless of the presented length.
func (h *Health) authorized(r *http.Request) bool {
	if !h.hasToken {
		return false
	}
	const prefix = "Bearer "
	a := r.Header.Get("Authorization")
	if len(a) <= len(prefix) || !strings.EqualFold(a[:len(prefix)], prefix) {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(a[len(prefix):])))
	return subtle.ConstantTimeCompare(sum[:], h.tokenHash[:]) == 1
}

func (hd *handler) serveQuery(w http.ResponseWriter, r *http.Request, v *view) {
	q := r.URL.Query() // a malformed pair is dropped; the rest still counts
	excluded := map[string]bool{}
	for _, e := range q["exclude"] {
		for n := range strings.SplitSeq(e, ",") {
			if n = strings.TrimSpace(n); n != "" && len(excluded) < 64 {
				excluded[n] = true
			}
		}
	}
	_, verbose := q["verbose"]

	st, code := v.status, v.code
	var unmatched []string
	if len(excluded) > 0 {
		for n := range excluded {
			if !slices.ContainsFunc(v.checks, func(c result) bool { return c.name == n }) {
				unmatched = append(unmatched, n)
			}
		}
		slices.Sort(unmatched)
		// Drain, the startup gate and the startup latch are not checks and
		// cannot be excluded.
		latched := hd.kind == KindStartup && st == StatusPass && hd.h.started.Load()
		if v.reason == "" && !latched {
			st = aggregate(v.checks, func(n string) bool { return excluded[n] })
			code = httpCode(hd.kind, st)
		}
	}

	showDetails := hd.internal || (verbose && hd.h.authorized(r))
	if !showDetails {
		body := publicBody(code)
		writePublic(w, r, code, []byte(body), []string{strconv.Itoa(len(body))})
		return
	}

	var body []byte
	hdr := w.Header()
	switch {
	case wantsText(r):
		body = hd.textDetails(v, st, excluded, unmatched)
		hdr["Content-Type"] = []string{mediaText}
	default:
		body = hd.jsonDetails(v, st, code, excluded, unmatched)
		if acceptsHealthJSON(r) {
			hdr["Content-Type"] = hdrHealthJSON
		} else {
			hdr["Content-Type"] = hdrJSON
		}
	}
	hdr["Cache-Control"] = hdrNoStore
	hdr["X-Content-Type-Options"] = hdrNosniff
	hdr["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// checkStatus is a check's status as shown in details: a failing
// non-critical check is "warn" (draft-inadarei semantics: healthy, with
// concerns), and a check without result is "unknown".
func checkStatus(c *result) string {
	if c.status == StatusFail && !c.critical {
		return StatusWarn.String()
	}
	return c.status.String()
}

// draftStatus maps an endpoint status to the three values of the draft.
func draftStatus(st Status, code int) string {
	switch {
	case st == StatusWarn:
		return "warn"
	case code == http.StatusOK:
		return "pass"
	}
	return "fail"
}

type detailBody struct {
	Status      string                     `json:"status"`
	Version     string                     `json:"version,omitempty"`
	Description string                     `json:"description,omitempty"`
	Output      string                     `json:"output,omitempty"`
	Notes       []string                   `json:"notes,omitempty"`
	Checks      map[string][]detailedCheck `json:"checks,omitempty"`
}

type detailedCheck struct {
	Status        string  `json:"status"`
	Critical      bool    `json:"critical"`
	Excluded      bool    `json:"excluded,omitempty"`
	ObservedValue float64 `json:"observedValue"`
	ObservedUnit  string  `json:"observedUnit"`
	Time          string  `json:"time,omitempty"`
	Since         string  `json:"since,omitempty"`
	Output        string  `json:"output,omitempty"`
}

func (hd *handler) jsonDetails(v *view, st Status, code int, excluded map[string]bool, unmatched []string) []byte {
	d := detailBody{
		Status:      draftStatus(st, code),
		Version:     hd.h.opts.Component.Version,
		Description: hd.h.opts.Component.Name,
		Output:      v.reason,
	}
	if d.Output == "" && st == StatusUnknown {
		d.Output = "no result yet"
	}
	for _, n := range unmatched {
		d.Notes = append(d.Notes, "cannot exclude "+strconv.Quote(n)+": no such check")
	}
	if len(v.checks) > 0 {
		d.Checks = make(map[string][]detailedCheck, len(v.checks))
	}
	for i := range v.checks {
		c := &v.checks[i]
		dc := detailedCheck{
			Status:        checkStatus(c),
			Critical:      c.critical,
			Excluded:      excluded[c.name],
			ObservedValue: float64(c.duration.Microseconds()) / 1000,
			ObservedUnit:  "ms",
			Output:        c.err,
		}
		if !c.at.IsZero() {
			dc.Time = c.at.UTC().Format(time.RFC3339Nano)
		}
		if !c.since.IsZero() {
			dc.Since = c.since.UTC().Format(time.RFC3339Nano)
		}
		// Draft key format "component:measurement".
		d.Checks[c.name+":responseTime"] = []detailedCheck{dc}
	}
	b, err := json.Marshal(d)
	if err != nil { // cannot happen: only strings, bools and numbers
		return []byte(`{"status":"` + d.Status + `"}` + "\n")
	}
	return append(b, '\n')
}

func (hd *handler) textDetails(v *view, st Status, excluded map[string]bool, unmatched []string) []byte {
	var b bytes.Buffer
	for i := range v.checks {
		c := &v.checks[i]
		mark, word := "[-]", "failed"
		switch {
		case c.status == StatusPass:
			mark, word = "[+]", "ok"
		case c.status == StatusUnknown:
			word = "failed: no result yet"
		case c.status == StatusFail && c.err != "":
			word = "failed: " + strings.ReplaceAll(c.err, "\n", " ")
		}
		if c.status == StatusFail && !c.critical {
			mark = "[+]"
			word = "non-critical, " + word
		}
		b.WriteString(mark + c.name + " ")
		if excluded[c.name] {
			b.WriteString("excluded: ")
		}
		b.WriteString(word + "\n")
	}
	switch v.reason {
	case "draining":
		b.WriteString("[-]shutdown failed: draining\n")
	case "starting":
		b.WriteString("[-]startup failed: not started yet\n")
	}
	for _, n := range unmatched {
		b.WriteString("warn: some health checks cannot be excluded: no matches for " + strconv.Quote(n) + "\n")
	}
	if httpCode(hd.kind, st) == http.StatusOK {
		b.WriteString(hd.kind.String() + " check passed\n")
	} else {
		b.WriteString(hd.kind.String() + " check failed\n")
	}
	return b.Bytes()
}

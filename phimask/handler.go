package phimask

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"time"
)

// Options configures a Handler. A nil *Options, like the zero Options,
// gives the safe defaults: every detector on, the built-in PHI key list,
// "[REDACTED:KIND]" replacements.
type Options struct {
	// PHIKeys adds attribute keys whose whole value is PHI, with the kind to
	// report ("" or an unknown Kind means KindID). Keys match whatever their
	// case and separators: "insuranceNo" also matches "INSURANCE_NO" and
	// "insurance-no", and also the end of longer keys ("primaryInsuranceNo").
	PHIKeys map[string]Kind

	// AllowKeys, when not empty, turns on deny-by-default: the value of
	// every attribute whose key is not listed is replaced by "[REDACTED]".
	// Listed keys are still scanned for PHI, and PHI keys are still redacted
	// whole. The nearest key decides: attribute keys, group member keys,
	// struct field names and map keys each decide for the value below them,
	// down to the next key. Under a key that is not listed, every string,
	// number, boolean, time, error or Stringer is replaced, however deep it
	// sits in slices, arrays, pointers, interfaces or LogValuers; a struct
	// field or map entry whose own name is listed is kept (and scanned).
	// Map keys under a key that is not listed are replaced by numbered
	// "[REDACTED]#n" placeholders unless they are listed themselves.
	AllowKeys []string

	// PassKeys lists keys whose values pass untouched: not scanned, not
	// replaced, even if they look like PHI keys. Use it for values known to
	// be safe that the detectors would otherwise alter (for example a
	// "build_date").
	PassKeys []string

	// Key, when set, replaces PHI with keyed tokens "[KIND:hex]" (see
	// Tokenize) instead of "[REDACTED:KIND]", so that the same value can be
	// followed across records and services that share the key. It must be
	// secret, random and at least 32 bytes long (MinKeyLen): a shorter key
	// could be guessed and every token reversed by trying values, so it is
	// ignored and replacements stay "[REDACTED:KIND]". The Handler keeps a
	// copy.
	Key []byte

	// SafeHarbor applies the HIPAA Safe Harbor transforms (45 CFR
	// 164.514(b)(2)) instead of removing some values entirely: dates keep
	// their year only (years more than 89 years ago are removed too, as they
	// reveal an age over 89); ZIP codes keep their first three digits, or
	// "000" for the restricted prefixes; ages over 89 become "90+" and lower
	// ages under an "age" key are kept.
	SafeHarbor bool

	// Kinds selects the detectors run over free text (messages and string
	// values). Nil means all of them. Disabling a kind does not disable the
	// PHI keys of that kind.
	Kinds []Kind

	// MaxDepth bounds how deep groups, structs, maps, slices and pointers
	// are followed (cycles end there). Deeper values are replaced by
	// "[REDACTED:DEPTH]". Zero means 8.
	MaxDepth int
}

// MinKeyLen is the shortest Options.Key a Handler uses for keyed tokens.
const MinKeyLen = 32

// level tracks how deep a value is and how many nodes of the current
// attribute have been visited: shared sub-values (the same slice referenced
// many times) could otherwise make a small value enormous to walk.
//
// deny reports that an allow-list is set and the nearest key above the
// value (attribute key, struct field name or map key) is not on it: every
// scalar below is replaced, down to the next key.
type level struct {
	depth int
	nodes *int
	deny  bool
}

func (l level) next() level { return level{depth: l.depth + 1, nodes: l.nodes, deny: l.deny} }

// denying returns l with its deny state set to d.
func (l level) denying(d bool) level { l.deny = d; return l }

// spent counts one node and reports whether the budget is exhausted.
func (l level) spent() bool {
	*l.nodes--
	return *l.nodes < 0
}

const (
	// maxNodes bounds the groups, containers and members visited for one
	// top-level attribute.
	maxNodes        = 4096
	defaultMaxDepth = 8
	maxElems        = 256 // per slice, array, map or struct
	redactedValue   = "[REDACTED]"
	depthValue      = "[REDACTED:DEPTH]"
	failedMessage   = "[REDACTED: phimask could not process this record]"
)

// config is the immutable part of a Handler, shared by derived handlers.
type config struct {
	text     textConfig
	keys     *keyRules
	maxDepth int
}

// Handler is a slog.Handler that removes PHI from every record before
// passing it to the next handler: the message and string values are
// scanned and the PHI inside them replaced; values under PHI keys are
// replaced whole; errors, Stringers, LogValuers, byte slices, structs,
// maps, slices and pointers are resolved and processed the same way.
//
// A Handler never passes a value it could not process: a panicking method,
// a value nested deeper than Options.MaxDepth or an unsupported type is
// replaced. The record's time, level and source are kept; numbers,
// booleans, durations and time values are kept unless their key is a PHI
// key.
//
// A Handler and the handlers derived from it with WithAttrs and WithGroup
// share their Stats and are safe for concurrent use.
type Handler struct {
	next slog.Handler
	c    *config
	st   *stats
}

// NewHandler returns a Handler that redacts records and passes them to
// next. A nil next discards the records.
func NewHandler(next slog.Handler, opts *Options) *Handler {
	if next == nil {
		next = slog.DiscardHandler
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	c := &config{maxDepth: o.MaxDepth}
	if c.maxDepth <= 0 {
		c.maxDepth = defaultMaxDepth
	}
	c.text = textConfig{on: allKinds, safeHarbor: o.SafeHarbor}
	if o.Kinds != nil {
		c.text.on = 0
		for _, k := range o.Kinds {
			if id, ok := kidOf(k); ok {
				c.text.on |= 1 << id
			}
		}
	}
	if len(o.Key) >= MinKeyLen {
		c.text.tok = NewTokenizer(o.Key)
	}
	if o.SafeHarbor {
		c.text.yearFloor = time.Now().Year() - 89
	}
	c.keys = newKeyRules(&o, &c.text)
	return &Handler{next: next, c: c, st: newStats()}
}

// Enabled reports whether the next handler handles records at level.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Stats returns a snapshot of the replacements made by h and the handlers
// derived from it. Attributes attached with WithAttrs are counted once,
// when attached.
func (h *Handler) Stats() Stats { return h.st.snapshot() }

// errNextPanicked is returned when the next handler panics.
var errNextPanicked = errors.New("phimask: next handler panicked")

// Handle redacts r and passes the result to the next handler. When r
// holds no PHI, r itself is passed on. If processing r fails as a whole, a
// record with r's time, level and source and a fixed message is passed on
// instead; a panic in the next handler is returned as an error.
func (h *Handler) Handle(ctx context.Context, r slog.Record) (err error) {
	h.st.records.Add(1)
	inNext := false
	defer func() {
		if p := recover(); p != nil {
			if inNext {
				err = errNextPanicked
				return
			}
			h.st.failures.Add(1)
			h.st.redacted.Add(1)
			err = h.withheld(ctx, r)
		}
	}()
	msg, changed := h.c.text.redact(r.Message, h.st)
	var buf [16]slog.Attr
	attrs := buf[:0]
	r.Attrs(func(a slog.Attr) bool {
		attrs = append(attrs, a)
		if h.safeAttr(&attrs[len(attrs)-1]) {
			changed = true
		}
		return true
	})
	inNext = true
	if !changed {
		return h.next.Handle(ctx, r)
	}
	h.st.redacted.Add(1)
	nr := slog.NewRecord(r.Time, r.Level, msg, r.PC)
	nr.AddAttrs(attrs...)
	return h.next.Handle(ctx, nr)
}

// withheld passes on a record that keeps only r's time, level and source.
func (h *Handler) withheld(ctx context.Context, r slog.Record) (err error) {
	defer func() {
		if recover() != nil {
			err = errNextPanicked
		}
	}()
	return h.next.Handle(ctx, slog.NewRecord(r.Time, r.Level, failedMessage, r.PC))
}

// WithAttrs redacts attrs once and returns a handler that adds them to
// every record.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	out := make([]slog.Attr, len(attrs))
	copy(out, attrs)
	for i := range out {
		h.safeAttr(&out[i])
	}
	return &Handler{next: h.next.WithAttrs(out), c: h.c, st: h.st}
}

// WithGroup returns a handler that nests later attributes under name
// (with any PHI in name replaced).
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	name, _ = h.c.text.redact(name, h.st)
	return &Handler{next: h.next.WithGroup(name), c: h.c, st: h.st}
}

// Redact redacts free text with h's options (detectors, key, Safe Harbor)
// and counts the replacements in h's Stats.
func (h *Handler) Redact(text string) string {
	out, _ := h.c.text.redact(text, h.st)
	return out
}

// RedactURL is the package-level RedactURL with h's options.
func (h *Handler) RedactURL(u *url.URL) string {
	return redactURL(u, h.c, h.st)
}

// safeAttr processes one top-level attribute in place and reports whether
// it changed; a panic replaces its value.
func (h *Handler) safeAttr(a *slog.Attr) (changed bool) {
	key := a.Key
	defer func() {
		if p := recover(); p != nil {
			h.st.failures.Add(1)
			*a, changed = slog.String(h.safeKey(key), redactedValue), true
		}
	}()
	nodes := maxNodes
	return h.attr(a, level{nodes: &nodes}, 0, false)
}

// safeKey returns key with PHI replaced, or "!BADKEY" if even that fails.
func (h *Handler) safeKey(key string) (out string) {
	defer func() {
		if recover() != nil {
			out = "!BADKEY"
		}
	}()
	out, _ = h.c.text.redact(key, nil)
	return out
}

// attr processes one attribute in place and reports whether it changed.
// inherit reports that an enclosing key is a PHI key of kind ik: every
// leaf below is replaced whole. The key of a decides whether the value is
// denied by the allow-list (lvl.deny from above does not apply to it).
func (h *Handler) attr(a *slog.Attr, lvl level, ik kid, inherit bool) bool {
	kc := h.c.keys.classify(a.Key)
	changed := false
	if kc.keyPHI {
		a.Key, _ = h.c.text.redact(a.Key, h.st)
		changed = true
	}
	if kc.pass && !inherit {
		return changed
	}
	if kc.phi {
		ik, inherit = kc.k, true
	}
	lvl = lvl.denying(!inherit && h.c.keys.allow != nil && !kc.allowed)
	nv, ch := h.process(a.Key, a.Value, lvl, ik, inherit)
	if ch {
		a.Value = nv
	}
	return changed || ch
}

// process processes one value whose key (key, used for Stats) has been
// classified already: lvl.deny and inherit carry the key's rules.
func (h *Handler) process(key string, v slog.Value, lvl level, ik kid, inherit bool) (slog.Value, bool) {
	changed := false
	vk := v.Kind()
	if vk == slog.KindLogValuer {
		v, changed = h.resolve(v), true
		vk = v.Kind()
	}
	// Fast path: numbers, booleans, durations and times outside PHI keys
	// and outside denied keys are kept as they are.
	if !inherit && !lvl.deny {
		switch vk {
		case slog.KindInt64, slog.KindUint64, slog.KindFloat64, slog.KindBool, slog.KindDuration, slog.KindTime:
			return v, changed
		case slog.KindString:
			if s, ch := h.c.text.redact(v.String(), h.st); ch {
				h.st.key(key)
				return slog.StringValue(s), true
			}
			return v, changed
		}
	}
	switch {
	case vk == slog.KindGroup:
		// Members are attributes: their own keys decide.
		if nv, ch := h.group(v, lvl, ik, inherit); ch {
			return nv, true
		}
		return v, changed
	case inherit:
		return h.whole(key, v, ik, lvl), true
	case lvl.deny && vk != slog.KindAny:
		return h.denied(key), true
	case lvl.deny && v.Any() == nil:
		return v, changed
	}
	// KindAny under a denied key is walked: its scalars are denied, the
	// keys inside it (struct fields, map keys) decide for their values.
	if nv, ch := h.value(key, v, lvl); ch {
		return nv, true
	}
	return v, changed
}

// denied counts a value replaced by the allow-list and returns its
// replacement.
func (h *Handler) denied(key string) slog.Value {
	h.st.denied.Add(1)
	h.st.key(key)
	return slog.StringValue(redactedValue)
}

// resolve calls LogValue (repeatedly, as slog does), replacing the value if
// a LogValue method panics or never stops returning LogValuers.
func (h *Handler) resolve(v slog.Value) (out slog.Value) {
	defer func() {
		if recover() != nil {
			h.st.failures.Add(1)
			out = slog.StringValue(redactedValue)
		}
	}()
	for k := 0; k < 100 && v.Kind() == slog.KindLogValuer; k++ {
		v = v.LogValuer().LogValue()
	}
	if v.Kind() == slog.KindLogValuer {
		h.st.failures.Add(1)
		return slog.StringValue(redactedValue)
	}
	return v
}

// group processes a group value.
func (h *Handler) group(v slog.Value, lvl level, ik kid, inherit bool) (slog.Value, bool) {
	if lvl.depth >= h.c.maxDepth || lvl.spent() {
		h.st.failures.Add(1)
		return slog.StringValue(depthValue), true
	}
	attrs := v.Group()
	var out []slog.Attr
	for i := range attrs {
		a := attrs[i]
		ch := h.attr(&a, lvl.next(), ik, inherit)
		if ch && out == nil {
			out = make([]slog.Attr, len(attrs))
			copy(out, attrs[:i])
		}
		if out != nil {
			out[i] = a
		}
	}
	if out == nil {
		return v, false
	}
	return slog.GroupValue(out...), true
}

// value processes a value under a key that is not a PHI key.
func (h *Handler) value(key string, v slog.Value, lvl level) (slog.Value, bool) {
	switch v.Kind() {
	case slog.KindString:
		if s, ch := h.c.text.redact(v.String(), h.st); ch {
			h.st.key(key)
			return slog.StringValue(s), true
		}
		return v, false
	case slog.KindAny:
		return h.anyValue(key, v.Any(), lvl)
	default:
		// Numbers, booleans, durations and times outside PHI keys are kept:
		// they are measurements and event times.
		return v, false
	}
}

// anyValue processes a slog.KindAny value.
func (h *Handler) anyValue(key string, x any, lvl level) (slog.Value, bool) {
	if x == nil {
		return slog.AnyValue(nil), false
	}
	out := h.sanitize(key, x, lvl, 0, false)
	switch o := out.(type) {
	case string:
		return slog.StringValue(o), true
	default:
		return slog.AnyValue(o), true
	}
}

// whole replaces a value under a PHI key of kind k.
func (h *Handler) whole(key string, v slog.Value, k kid, lvl level) slog.Value {
	switch v.Kind() {
	case slog.KindAny:
		x := v.Any()
		if x == nil {
			return v
		}
		out := h.sanitize(key, x, lvl, k, true)
		if s, ok := out.(string); ok {
			return slog.StringValue(s)
		}
		return slog.AnyValue(out)
	case slog.KindTime:
		return slog.StringValue(h.leaf(key, v.Time().Format(time.RFC3339Nano), k, true))
	case slog.KindInt64, slog.KindUint64, slog.KindFloat64:
		if k == kAge && h.c.text.safeHarbor {
			if f := numeric(v); f < 90 {
				return v
			}
		}
		return slog.StringValue(h.leaf(key, v.String(), k, true))
	default:
		return slog.StringValue(h.leaf(key, v.String(), k, true))
	}
}

// leaf returns the replacement of one scalar text under key: whole when
// inherit is set (a PHI key), else the text with its PHI replaced.
func (h *Handler) leaf(key, text string, k kid, inherit bool) string {
	if !inherit {
		out, ch := h.c.text.redact(text, h.st)
		if ch {
			h.st.key(key)
		}
		return out
	}
	h.st.count(k)
	h.st.key(key)
	if h.c.text.safeHarbor {
		switch k {
		case kDate:
			if y := yearOf(text); y != "" && atoi(y) >= h.c.text.yearFloor {
				return y
			}
		case kZIP:
			return safeHarborZIP(text)
		case kAge:
			if v := atoi(keepDigits(text)); v >= 0 && v < 90 && len(text) <= 3 {
				return text
			}
			return "90+"
		}
	}
	return replacement(h.c.text.tok, kindNames[k], text)
}

// numeric returns a number value as a float64.
func numeric(v slog.Value) float64 {
	switch v.Kind() {
	case slog.KindInt64:
		return float64(v.Int64())
	case slog.KindUint64:
		return float64(v.Uint64())
	default:
		return v.Float64()
	}
}

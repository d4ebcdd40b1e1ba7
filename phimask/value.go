package phimask

import (
	"encoding"
	"fmt"
	"log/slog"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

var (
	errorType     = reflect.TypeFor[error]()
	logValuerType = reflect.TypeFor[slog.LogValuer]()
	stringerType  = reflect.TypeFor[fmt.Stringer]()
	textMarshT    = reflect.TypeFor[encoding.TextMarshaler]()
)

// sanitize turns any Go value into a PHI-free tree of plain values
// (string, bool, numbers, nil, map[string]any, []any) that every slog
// handler can print. inherit reports that the value sits under a PHI key of
// kind k: its leaves are replaced whole.
//
// Errors print as Error(), and values of types that have no exported
// fields print as String() when they have one; both texts are then scanned.
// Structs print their exported fields only (unexported fields are never
// printed), under their JSON names; fields tagged `phi:"kind"` and fields
// whose names are PHI keys are replaced whole. slog.Attr values are
// processed as attributes (their key decides) and slog.Value values as
// values under key. lvl.deny carries the allow-list down to the next key.
// key is what Stats counts replacements under: the nearest attribute or
// struct field name, never a map key.
func (h *Handler) sanitize(key string, x any, lvl level, k kid, inherit bool) (out any) {
	defer func() {
		if recover() != nil {
			h.st.failures.Add(1)
			out = redactedValue
		}
	}()
	return h.walk(key, reflect.ValueOf(x), lvl, k, inherit)
}

func (h *Handler) walk(key string, rv reflect.Value, lvl level, k kid, inherit bool) any {
	if !rv.IsValid() {
		return nil
	}
	if lvl.depth > h.c.maxDepth || lvl.spent() {
		h.st.failures.Add(1)
		return depthValue
	}
	// deny: a scalar here is replaced by the allow-list. Pointers,
	// interfaces, LogValuers, slog values and containers are looked into
	// first; the rule then applies to what they hold.
	deny := lvl.deny && !inherit
	t := rv.Type()
	if rv.CanInterface() {
		switch x := rv.Interface().(type) {
		case slog.Attr:
			// An attribute passed as a value: its key decides, as for any
			// attribute.
			a := x
			h.attr(&a, lvl.next(), k, inherit)
			return map[string]any{a.Key: plain(a.Value)}
		case slog.Value:
			v, _ := h.process(key, x, lvl.next(), k, inherit)
			return plain(v)
		case time.Time:
			if deny {
				return h.denied(key).String()
			}
			if inherit {
				return h.leaf(key, x.Format(time.RFC3339Nano), k, true)
			}
			return x.Format(time.RFC3339Nano)
		case *url.URL:
			if x == nil {
				return nil
			}
			if deny {
				return h.denied(key).String()
			}
			if inherit {
				return h.leaf(key, x.Redacted(), k, true)
			}
			return redactURL(x, h.c, h.st)
		case url.URL:
			if deny {
				return h.denied(key).String()
			}
			if inherit {
				return h.leaf(key, x.Redacted(), k, true)
			}
			return redactURL(&x, h.c, h.st)
		case *url.Userinfo, url.Userinfo:
			// User names and passwords are never printed.
			return "REDACTED"
		case []byte:
			if deny {
				return h.denied(key).String()
			}
			return h.leaf(key, string(x), k, inherit)
		}
		if isNilPtr(rv) {
			return nil
		}
		if t.Implements(logValuerType) {
			// Resolve as slog would, then process with the same rules.
			v, _ := h.process(key, slog.AnyValue(rv.Interface()), lvl.next(), k, inherit)
			return plain(v)
		}
		if t.Implements(errorType) {
			if deny {
				return h.denied(key).String()
			}
			return h.leaf(key, rv.Interface().(error).Error(), k, inherit)
		}
		if !hasExportedFields(t) {
			switch {
			case t.Implements(stringerType):
				if deny {
					return h.denied(key).String()
				}
				return h.leaf(key, rv.Interface().(fmt.Stringer).String(), k, inherit)
			case t.Implements(textMarshT):
				if deny {
					return h.denied(key).String()
				}
				b, err := rv.Interface().(encoding.TextMarshaler).MarshalText()
				if err != nil {
					h.st.failures.Add(1)
					return redactedValue
				}
				return h.leaf(key, string(b), k, inherit)
			}
		}
	}
	switch rv.Kind() {
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return nil
		}
		return h.walk(key, rv.Elem(), lvl.next(), k, inherit)
	case reflect.String:
		if deny {
			return h.denied(key).String()
		}
		return h.leaf(key, rv.String(), k, inherit)
	case reflect.Bool:
		if deny {
			return h.denied(key).String()
		}
		if inherit {
			return h.leaf(key, strconv.FormatBool(rv.Bool()), k, true)
		}
		return rv.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if deny {
			return h.denied(key).String()
		}
		if inherit {
			return h.wholeNumber(key, strconv.FormatInt(rv.Int(), 10), float64(rv.Int()), rv.Int(), k)
		}
		return rv.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if deny {
			return h.denied(key).String()
		}
		if inherit {
			return h.wholeNumber(key, strconv.FormatUint(rv.Uint(), 10), float64(rv.Uint()), rv.Uint(), k)
		}
		return rv.Uint()
	case reflect.Float32, reflect.Float64:
		if deny {
			return h.denied(key).String()
		}
		if inherit {
			return h.wholeNumber(key, strconv.FormatFloat(rv.Float(), 'g', -1, 64), rv.Float(), rv.Float(), k)
		}
		return rv.Float()
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return nil
		}
		if t.Elem().Kind() == reflect.Uint8 && rv.Kind() == reflect.Slice {
			if deny {
				return h.denied(key).String()
			}
			return h.leaf(key, string(rv.Bytes()), k, inherit)
		}
		n := rv.Len()
		out := make([]any, 0, min(n, maxElems+1))
		for i := 0; i < n && i < maxElems; i++ {
			out = append(out, h.walk(key, rv.Index(i), lvl.next(), k, inherit))
		}
		if n > maxElems {
			out = append(out, fmt.Sprintf("[TRUNCATED: %d more]", n-maxElems))
		}
		return out
	case reflect.Map:
		if rv.IsNil() {
			return nil
		}
		return h.walkMap(key, rv, lvl, k, inherit)
	case reflect.Struct:
		out := make(map[string]any)
		for i := 0; i < t.NumField() && len(out) < maxElems; i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue // never printed, not even redacted
			}
			name := f.Name
			if tag, ok := f.Tag.Lookup("json"); ok {
				tn, _, _ := strings.Cut(tag, ",")
				if tn == "-" {
					continue
				}
				if tn != "" {
					name = tn
				}
			}
			phiTag, hasPHI := f.Tag.Lookup("phi")
			if hasPHI && phiTag != "-" {
				fk := kindFromTag(phiTag)
				out[name] = h.walk(name, rv.Field(i), lvl.next(), fk, true)
				continue
			}
			n, v := h.field(name, rv.Field(i), lvl, k, inherit)
			out[n] = v
		}
		return out
	default:
		// Functions, channels, unsafe pointers, complex numbers.
		h.st.failures.Add(1)
		return redactedValue
	}
}

// walkMap processes a map under key (the attribute or struct field that
// holds it, which is also what Stats counts its entries under: map keys
// are data and may be PHI).
//
// Each entry is processed as an attribute named by its map key. The map
// keys themselves are printed only when that is safe: under a PHI key every
// map key is replaced ("[KIND:hex]" with Options.Key, else a numbered
// "[REDACTED:KIND]#n", so that keys stay distinct); under a key denied by
// the allow-list, every map key not on the allow-list is replaced by a
// numbered "[REDACTED]#n"; elsewhere map keys are scanned like any text.
// Keys of other types than strings, numbers and booleans are replaced.
func (h *Handler) walkMap(key string, rv reflect.Value, lvl level, k kid, inherit bool) any {
	type kv struct {
		k      string
		opaque bool // not a string, number or bool: never printed
		v      reflect.Value
	}
	entries := make([]kv, 0, min(rv.Len(), maxElems+1))
	it := rv.MapRange()
	for it.Next() {
		s, ok := mapKey(it.Key())
		entries = append(entries, kv{s, !ok, it.Value()})
	}
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].k < entries[j].k })
	out := make(map[string]any, min(len(entries), maxElems+1))
	seq := 0
	numbered := func(base string) string {
		for {
			seq++
			name := base + "#" + strconv.Itoa(seq)
			if _, dup := out[name]; !dup {
				return name
			}
		}
	}
	for i, e := range entries {
		if i == maxElems {
			out["[TRUNCATED]"] = fmt.Sprintf("%d more", len(entries)-maxElems)
			break
		}
		kc := h.c.keys.classify(e.k)
		if e.opaque {
			kc = keyClass{}
		}
		var name string
		switch {
		case inherit:
			h.st.count(k)
			h.st.key(key)
			if h.c.text.tok != nil && !e.opaque {
				name = h.c.text.tok.Token(kindNames[k], e.k)
				if _, dup := out[name]; dup {
					name = numbered(name)
				}
			} else {
				name = numbered(replacement(nil, kindNames[k], ""))
			}
		case e.opaque || (lvl.deny && !kc.allowed):
			h.st.denied.Add(1)
			h.st.key(key)
			name = numbered(redactedValue)
		case kc.keyPHI:
			name, _ = h.c.text.redact(e.k, h.st)
			h.st.key(key)
			if _, dup := out[name]; dup {
				name = numbered(name)
			}
		default:
			name = e.k
			if _, dup := out[name]; dup {
				name = numbered(name)
			}
		}
		out[name] = h.member(key, kc, e.v, lvl, k, inherit)
	}
	return out
}

// plain turns a processed slog.Value into a plain Go value.
func plain(v slog.Value) any {
	switch v.Kind() {
	case slog.KindGroup:
		m := map[string]any{}
		for _, a := range v.Group() {
			m[a.Key] = plain(a.Value)
		}
		return m
	case slog.KindTime:
		return v.Time().Format(time.RFC3339Nano)
	case slog.KindDuration:
		return v.Duration().String()
	default:
		return v.Any()
	}
}

// field processes one struct field the way an attribute with that key is
// processed.
func (h *Handler) field(name string, v reflect.Value, lvl level, k kid, inherit bool) (string, any) {
	kc := h.c.keys.classify(name)
	if kc.keyPHI {
		name, _ = h.c.text.redact(name, h.st)
	}
	return name, h.member(name, kc, v, lvl, k, inherit)
}

// member processes the value of a struct field or map entry whose name
// has class kc; key is what Stats counts it under.
func (h *Handler) member(key string, kc keyClass, v reflect.Value, lvl level, k kid, inherit bool) any {
	if kc.pass && !inherit {
		if v.CanInterface() {
			return v.Interface()
		}
		return redactedValue
	}
	if kc.phi {
		k, inherit = kc.k, true
	}
	lvl = lvl.denying(!inherit && h.c.keys.allow != nil && !kc.allowed)
	return h.walk(key, v, lvl.next(), k, inherit)
}

// wholeNumber replaces a number under a PHI key; under Safe Harbor an age
// below 90 is kept.
func (h *Handler) wholeNumber(key, text string, f float64, orig any, k kid) any {
	if k == kAge && h.c.text.safeHarbor && f < 90 {
		return orig
	}
	return h.leaf(key, text, k, true)
}

// mapKey formats a map key of a string, number or boolean type (looking
// through interfaces); ok is false for any other type, whose formatting
// could print unexported fields.
func mapKey(v reflect.Value) (string, bool) {
	for v.Kind() == reflect.Interface && !v.IsNil() {
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.String:
		return v.String(), true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return strconv.FormatUint(v.Uint(), 10), true
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64), true
	case reflect.Bool:
		return strconv.FormatBool(v.Bool()), true
	}
	return "", false
}

// kindFromTag maps a `phi:"..."` tag to a kind: a Kind name in any case
// ("ssn", "MRN", "member_id"), anything else KindID.
func kindFromTag(tag string) kid {
	tag = strings.ToUpper(strings.TrimSpace(tag))
	tag = strings.ReplaceAll(tag, "-", "_")
	if id, ok := kidOf(Kind(tag)); ok {
		return id
	}
	switch tag {
	case "MEMBER", "MEMBERID":
		return kMember
	case "CARD", "CREDITCARD":
		return kCard
	}
	return kID
}

func isNilPtr(rv reflect.Value) bool {
	switch rv.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan:
		return rv.IsNil()
	}
	return false
}

// hasExportedFields reports whether t (or what it points to) is a struct
// with at least one exported field.
func hasExportedFields(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return false
	}
	for i := 0; i < t.NumField(); i++ {
		if t.Field(i).IsExported() {
			return true
		}
	}
	return false
}

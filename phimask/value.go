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
// whose names are PHI keys are replaced whole.
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
	t := rv.Type()
	if rv.CanInterface() {
		switch x := rv.Interface().(type) {
		case time.Time:
			if inherit {
				return h.leaf(key, x.Format(time.RFC3339Nano), k, true)
			}
			return x.Format(time.RFC3339Nano)
		case *url.URL:
			if x == nil {
				return nil
			}
			if inherit {
				return h.leaf(key, x.Redacted(), k, true)
			}
			return redactURL(x, h.c, h.st)
		case url.URL:
			if inherit {
				return h.leaf(key, x.Redacted(), k, true)
			}
			return redactURL(&x, h.c, h.st)
		case *url.Userinfo, url.Userinfo:
			// User names and passwords are never printed.
			return "REDACTED"
		case []byte:
			return h.leaf(key, string(x), k, inherit)
		}
		if isNilPtr(rv) {
			return nil
		}
		if t.Implements(logValuerType) {
			// Resolve as slog would, process like an attribute, then flatten.
			a := slog.Attr{Key: key, Value: slog.AnyValue(rv.Interface())}
			h.attr(&a, lvl, k, inherit)
			return plain(a.Value)
		}
		if t.Implements(errorType) {
			return h.leaf(key, rv.Interface().(error).Error(), k, inherit)
		}
		if !hasExportedFields(t) {
			switch {
			case t.Implements(stringerType):
				return h.leaf(key, rv.Interface().(fmt.Stringer).String(), k, inherit)
			case t.Implements(textMarshT):
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
		return h.leaf(key, rv.String(), k, inherit)
	case reflect.Bool:
		if inherit {
			return h.leaf(key, strconv.FormatBool(rv.Bool()), k, true)
		}
		return rv.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if inherit {
			return h.wholeNumber(key, strconv.FormatInt(rv.Int(), 10), float64(rv.Int()), rv.Int(), k)
		}
		return rv.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if inherit {
			return h.wholeNumber(key, strconv.FormatUint(rv.Uint(), 10), float64(rv.Uint()), rv.Uint(), k)
		}
		return rv.Uint()
	case reflect.Float32, reflect.Float64:
		if inherit {
			return h.wholeNumber(key, strconv.FormatFloat(rv.Float(), 'g', -1, 64), rv.Float(), rv.Float(), k)
		}
		return rv.Float()
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return nil
		}
		if t.Elem().Kind() == reflect.Uint8 && rv.Kind() == reflect.Slice {
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
		type kv struct {
			k string
			v reflect.Value
		}
		var entries []kv
		it := rv.MapRange()
		for it.Next() {
			entries = append(entries, kv{h.mapKey(it.Key()), it.Value()})
		}
		sort.Slice(entries, func(i, j int) bool { return entries[i].k < entries[j].k })
		out := make(map[string]any, min(len(entries), maxElems+1))
		for i, e := range entries {
			if i == maxElems {
				out["[TRUNCATED]"] = fmt.Sprintf("%d more", len(entries)-maxElems)
				break
			}
			name, v := h.field(e.k, e.v, lvl, k, inherit, "")
			out[name] = v
		}
		return out
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
			n, v := h.field(name, rv.Field(i), lvl, k, inherit, "")
			out[n] = v
		}
		return out
	default:
		// Functions, channels, unsafe pointers, complex numbers.
		h.st.failures.Add(1)
		return redactedValue
	}
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

// field processes one named member (struct field or map entry) the way an
// attribute with that key is processed.
func (h *Handler) field(name string, v reflect.Value, lvl level, k kid, inherit bool, _ string) (string, any) {
	kc := h.c.keys.classify(name)
	if kc.keyPHI {
		name, _ = h.c.text.redact(name, h.st)
	}
	if kc.pass && !inherit {
		if v.CanInterface() {
			return name, v.Interface()
		}
		return name, redactedValue
	}
	if kc.phi {
		k, inherit = kc.k, true
	}
	if !inherit && h.c.keys.allow != nil && !kc.allowed {
		switch v.Kind() {
		case reflect.Struct, reflect.Map, reflect.Pointer, reflect.Interface, reflect.Slice, reflect.Array:
			// Containers are walked; the rule applies to their members.
		default:
			h.st.denied.Add(1)
			h.st.key(name)
			return name, redactedValue
		}
	}
	return name, h.walk(name, v, lvl.next(), k, inherit)
}

// wholeNumber replaces a number under a PHI key; under Safe Harbor an age
// below 90 is kept.
func (h *Handler) wholeNumber(key, text string, f float64, orig any, k kid) any {
	if k == kAge && h.c.text.safeHarbor && f < 90 {
		return orig
	}
	return h.leaf(key, text, k, true)
}

// mapKey formats a map key.
func (h *Handler) mapKey(v reflect.Value) string {
	switch v.Kind() {
	case reflect.String:
		return v.String()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return strconv.FormatUint(v.Uint(), 10)
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	}
	if v.CanInterface() {
		return fmt.Sprint(v.Interface())
	}
	return redactedValue
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

// isContainer reports whether v holds a struct (with exported fields, not
// an error), map, slice or array, possibly behind pointers: a value whose
// members are processed one by one.
func isContainer(v slog.Value) bool {
	if v.Kind() != slog.KindAny {
		return false
	}
	x := v.Any()
	if x == nil {
		return false
	}
	if _, ok := x.(error); ok {
		return false
	}
	t := reflect.TypeOf(x)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Map, reflect.Array:
		return true
	case reflect.Slice:
		return t.Elem().Kind() != reflect.Uint8
	case reflect.Struct:
		return hasExportedFields(t) && t != reflect.TypeFor[time.Time]()
	}
	return false
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

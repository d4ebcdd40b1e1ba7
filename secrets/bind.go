package secrets

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
)

// field is one tagged struct field to fill.
type field struct {
	index      []int
	name       string // Go field path, for errors about the struct
	key        string
	required   bool
	def        string
	hasDefault bool
}

var (
	valueType    = reflect.TypeFor[Value]()
	durationType = reflect.TypeFor[time.Duration]()
	bytesType    = reflect.TypeFor[[]byte]()
)

// Bind fills the struct dst points to from fields tagged
//
//	`secret:"DB_PASSWORD"`              optional; the field is left as it is when absent
//	`secret:"DB_PASSWORD,required"`     absent is an error
//	`secret:"PORT,default=8080"`        used when absent (default= must come last)
//	`secret:"-"`                        ignored
//
// Field types: Value, string, []byte, bool, int and uint of every size,
// float32, float64 and time.Duration. Untagged struct fields are walked
// into. Keys are fetched in parallel (at most Options.Parallelism at once).
//
// Bind reports every problem in one *BindError: all missing required keys
// by name, and every value that does not parse by key and expected type,
// never with the value. A dst that is not a non-nil pointer to a struct, or
// an unsupported field type or tag, fails with ErrInvalidTarget before
// anything is fetched. When Bind fails, dst may be partly filled.
func (l *Loader) Bind(ctx context.Context, dst any) error {
	rv := reflect.ValueOf(dst)
	if !rv.IsValid() || rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("secrets: bind: %w: want a non-nil pointer to a struct, got %T", ErrInvalidTarget, dst)
	}
	var fields []field
	if err := collect(rv.Elem().Type(), nil, "", &fields); err != nil {
		return err
	}

	// Fetch each distinct key once, in parallel within the bound.
	var keys []string
	seen := map[string]int{}
	for _, f := range fields {
		if _, ok := seen[f.key]; !ok {
			seen[f.key] = len(keys)
			keys = append(keys, f.key)
		}
	}
	vals := make([]Value, len(keys))
	errs := make([]error, len(keys))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(l.parallelism)
	for i, k := range keys {
		g.Go(func() error {
			vals[i], errs[i] = l.Get(gctx, k)
			// Keep going on errors: the caller wants every missing key.
			if errors.Is(errs[i], ErrClosed) {
				return errs[i]
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}

	be := &BindError{}
	required, defaulted := map[string]struct{}{}, map[string]struct{}{}
	for _, f := range fields {
		i := seen[f.key]
		v, err := vals[i], errs[i]
		if f.required {
			required[f.key] = struct{}{}
		}
		fv := rv.Elem().FieldByIndex(f.index)
		switch {
		case err == nil:
			if perr := setField(fv, v); perr != nil {
				be.Errs = append(be.Errs, &KeyError{Key: f.key, Err: perr})
			}
		case errors.Is(err, ErrNotFound) && f.hasDefault:
			defaulted[f.key] = struct{}{}
			if perr := setField(fv, NewValue(f.def)); perr != nil {
				be.Errs = append(be.Errs, &KeyError{Key: f.key, Err: fmt.Errorf("default of field %s: %w", f.name, perr)})
			}
		case errors.Is(err, ErrNotFound) && f.required:
			if !slices.Contains(be.Missing, f.key) {
				be.Missing = append(be.Missing, f.key)
			}
		case errors.Is(err, ErrNotFound):
		default:
			if !slices.ContainsFunc(be.Errs, func(x error) bool { return errors.Is(x, err) }) {
				be.Errs = append(be.Errs, err)
			}
		}
	}
	l.mu.Lock()
	for k := range required {
		l.required[k] = struct{}{}
	}
	for k := range defaulted {
		l.defaulted[k] = struct{}{}
	}
	l.mu.Unlock()
	if len(be.Missing) > 0 || len(be.Errs) > 0 {
		return be
	}
	return nil
}

// collect walks t and appends the tagged fields; it fails on a bad tag or an
// unsupported type, since that is a bug in the program, not in the
// environment.
func collect(t reflect.Type, index []int, prefix string, out *[]field) error {
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		idx := append(append([]int(nil), index...), i)
		name := prefix + sf.Name
		tag, tagged := sf.Tag.Lookup("secret")
		if tag == "-" {
			continue
		}
		if !tagged {
			if sf.Type.Kind() == reflect.Struct && sf.Type != valueType && sf.IsExported() {
				if err := collect(sf.Type, idx, name+".", out); err != nil {
					return err
				}
			}
			continue
		}
		if !sf.IsExported() {
			return fmt.Errorf("secrets: bind: field %s: %w: tagged field is not exported", name, ErrInvalidTarget)
		}
		f := field{index: idx, name: name}
		key, rest, _ := strings.Cut(tag, ",")
		f.key = strings.TrimSpace(key)
		if !ValidKey(f.key) {
			return fmt.Errorf("secrets: bind: field %s: %w: tag key %q: %w (want upper-case letters, digits and _, like DB_PASSWORD)",
				name, ErrInvalidTarget, truncate(f.key, 64), ErrInvalidKey)
		}
		for rest != "" {
			var opt string
			if strings.HasPrefix(rest, "default=") {
				f.def, f.hasDefault = strings.TrimPrefix(rest, "default="), true
				break
			}
			opt, rest, _ = strings.Cut(rest, ",")
			switch strings.TrimSpace(opt) {
			case "required":
				f.required = true
			case "":
			default:
				return fmt.Errorf("secrets: bind: field %s: %w: unknown tag option %q (want required or default=)", name, ErrInvalidTarget, opt)
			}
		}
		if f.required && f.hasDefault {
			return fmt.Errorf("secrets: bind: field %s: %w: required and default= together", name, ErrInvalidTarget)
		}
		if !supported(sf.Type) {
			return fmt.Errorf("secrets: bind: field %s: %w: unsupported type %s", name, ErrInvalidTarget, sf.Type)
		}
		*out = append(*out, f)
	}
	return nil
}

func supported(t reflect.Type) bool {
	switch t {
	case valueType, durationType, bytesType:
		return true
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// setField converts v into fv. Its errors say what was expected and never
// quote the input: strconv and time errors do, so they are not wrapped.
func setField(fv reflect.Value, v Value) error {
	switch fv.Type() {
	case valueType:
		fv.Set(reflect.ValueOf(v))
		return nil
	case bytesType:
		fv.SetBytes(v.Bytes())
		return nil
	case durationType:
		d, err := time.ParseDuration(strings.TrimSpace(v.Reveal()))
		if err != nil {
			return parseError("a duration such as 30s or 1h30m", err)
		}
		fv.SetInt(int64(d))
		return nil
	}
	s := strings.TrimSpace(v.Reveal())
	switch fv.Kind() {
	case reflect.String:
		fv.SetString(v.Reveal())
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return parseError("a bool (true, false, 1, 0)", err)
		}
		fv.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 0, fv.Type().Bits())
		if err != nil {
			return parseError("an integer ("+fv.Type().String()+")", err)
		}
		fv.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(s, 0, fv.Type().Bits())
		if err != nil {
			return parseError("an unsigned integer ("+fv.Type().String()+")", err)
		}
		fv.SetUint(n)
	case reflect.Float32, reflect.Float64:
		n, err := strconv.ParseFloat(s, fv.Type().Bits())
		if err != nil {
			return parseError("a number ("+fv.Type().String()+")", err)
		}
		fv.SetFloat(n)
	default:
		return fmt.Errorf("%w: unsupported type %s", ErrInvalidTarget, fv.Type())
	}
	return nil
}

func parseError(want string, err error) error {
	if errors.Is(err, strconv.ErrRange) {
		return fmt.Errorf("%w: want %s, value out of range (value withheld)", ErrParse, want)
	}
	return fmt.Errorf("%w: want %s (value withheld)", ErrParse, want)
}

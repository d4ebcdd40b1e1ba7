package secrets

import (
	"errors"
	"strings"
)

// Sentinel errors; test for them with errors.Is.
var (
	// ErrNotFound: no source holds the key.
	ErrNotFound = errors.New("not found in any source")
	// ErrInvalidKey: a key is not in the canonical form (see [ValidKey]).
	ErrInvalidKey = errors.New("invalid key")
	// ErrParse: a value or default could not be converted to the field's type.
	ErrParse = errors.New("cannot parse value")
	// ErrInvalidTarget: Bind was given something other than a non-nil
	// pointer to a struct, or a field of an unsupported type or tag.
	ErrInvalidTarget = errors.New("invalid bind target")
	// ErrProduction: a development-only source (.env) was given to a
	// loader in production mode.
	ErrProduction = errors.New("development-only source refused in production")
	// ErrNameCollision: two keys map onto the same Key Vault secret name.
	ErrNameCollision = errors.New("key vault name collision")
	// ErrMalformed: a .env file or a mounted secret file is not usable.
	ErrMalformed = errors.New("malformed source")
	// ErrClosed: the loader has been closed.
	ErrClosed = errors.New("secrets: loader closed")
)

// KeyError is an error about one key. Its message names the key and, when
// known, the source, and never contains a secret value.
type KeyError struct {
	Key    string // canonical key
	Source string // source name, "" when not specific to one source
	Err    error  // sentinel or underlying error; its text is vetted too
}

func (e *KeyError) Error() string {
	var b strings.Builder
	b.WriteString("secrets: key ")
	b.WriteString(e.Key)
	if e.Source != "" {
		b.WriteString(": ")
		b.WriteString(e.Source)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *KeyError) Unwrap() error { return e.Err }

// BindError gathers every problem found by one Bind call, so a deployment
// with three missing secrets learns about all three at once.
type BindError struct {
	Missing []string // required keys found in no source, in field order
	Errs    []error  // other problems (*KeyError), in field order
}

func (e *BindError) Error() string {
	var parts []string
	if len(e.Missing) > 0 {
		parts = append(parts, "missing required keys: "+strings.Join(e.Missing, ", "))
	}
	for _, err := range e.Errs {
		parts = append(parts, strings.TrimPrefix(err.Error(), "secrets: "))
	}
	return "secrets: bind: " + strings.Join(parts, "; ")
}

// Unwrap lets errors.Is find ErrNotFound (when keys are missing) and every
// sentinel carried by Errs.
func (e *BindError) Unwrap() []error {
	errs := append([]error(nil), e.Errs...)
	if len(e.Missing) > 0 {
		errs = append(errs, ErrNotFound)
	}
	return errs
}

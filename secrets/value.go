package secrets

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
)

// Redacted is what every printing, logging and encoding path of a [Value]
// produces instead of the secret.
const Redacted = "[REDACTED]"

// ErrNotDecodable is returned by [Value.GobDecode]: an encoded Value holds
// only the redaction marker, so there is nothing to restore.
var ErrNotDecodable = errors.New("secrets: a Value cannot be decoded: its encoded form is the redaction marker")

// Value holds one secret. The zero Value is an empty secret.
//
// Every way the standard library turns a value into text gives [Redacted]:
// String, GoString, Format (every verb, including %v, %+v, %#v, %s, %q, %x,
// also for a Value inside a struct, map or slice), LogValue (log/slog),
// MarshalJSON, MarshalText (encoding/xml, YAML and TOML encoders use it) and
// GobEncode. Only [Value.Reveal] and [Value.Bytes] give the secret.
//
// The secret is held by an unexported closure: reflection can neither call
// nor look inside one, so printers that skip these methods (fmt on an
// unexported Value field, go-spew as used by testify's failure diffs,
// reflect-based dumpers) print a function address, never the bytes.
//
// A Value is immutable and safe for concurrent use; copies share the same
// underlying bytes. Compare Values with [Value.Equal], not ==.
type Value struct {
	get func() []byte
}

func newValue(b []byte) Value {
	return Value{get: func() []byte { return b }}
}

// bytes returns the held bytes (not a copy) or nil.
func (v Value) bytes() []byte {
	if v.get == nil {
		return nil
	}
	return v.get()
}

// NewValue returns a Value holding s.
func NewValue(s string) Value {
	return newValue([]byte(s))
}

// NewValueBytes returns a Value holding a copy of b; the caller may clear b
// afterwards.
func NewValueBytes(b []byte) Value {
	return newValue(append([]byte(nil), b...))
}

// Reveal returns the secret. Call it at the point of use (building a
// connection string, signing a token) and do not keep or log the result.
func (v Value) Reveal() string {
	return string(v.bytes())
}

// Bytes returns a fresh copy of the secret that the caller owns and may wipe
// with clear() after use. Go strings cannot be wiped, so prefer Bytes where
// the consumer accepts a []byte.
func (v Value) Bytes() []byte {
	b := v.bytes()
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

// Len returns the length of the secret in bytes.
func (v Value) Len() int { return len(v.bytes()) }

// IsZero reports whether the secret is empty (also used by encoding/json's
// omitzero).
func (v Value) IsZero() bool { return v.Len() == 0 }

// Equal reports whether v and o hold the same secret, in time that does not
// depend on where they differ (use it to compare API keys).
func (v Value) Equal(o Value) bool {
	return subtle.ConstantTimeCompare(v.bytes(), o.bytes()) == 1
}

// String returns [Redacted].
func (Value) String() string { return Redacted }

// GoString returns [Redacted].
func (Value) GoString() string { return Redacted }

// Format writes [Redacted] for every verb and flag.
func (Value) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(Redacted)) }

// LogValue returns [Redacted] as a slog string value.
func (Value) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalJSON returns [Redacted] as a JSON string.
func (Value) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText returns [Redacted].
func (Value) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// GobEncode returns [Redacted], so encoding/gob never writes the secret.
func (Value) GobEncode() ([]byte, error) { return []byte(Redacted), nil }

// GobDecode always fails with [ErrNotDecodable]: rather than silently give an
// empty secret, decoding a redacted Value is an error.
func (*Value) GobDecode([]byte) error { return ErrNotDecodable }

// Interface checks: these are the promises of the Value doc.
var (
	_ fmt.Stringer   = Value{}
	_ fmt.GoStringer = Value{}
	_ fmt.Formatter  = Value{}
	_ slog.LogValuer = Value{}
)

package phimask

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"strings"
	"sync"
	"unicode"
)

// tokenHexLen is the number of hex characters kept from the MAC: 16 hex = 64
// bits. For n distinct values of one kind the chance of any collision is
// about n²/2^65: under one in a million up to a few million values, a few in
// ten thousand at a hundred million. That is enough to match an audit event
// to a log line, and the token stays short enough to read.
const tokenHexLen = 16

// Tokenize returns a keyed pseudonym "[KIND:hex]" for value: the first 64 bits
// of HMAC-SHA256(key, kind || 0x00 || normalize(kind, value)), hex encoded.
//
// The value is normalized per kind first (digits only for numeric
// identifiers such as SSN, phone and NPI, without the +1 of a NANP number;
// lower case for e-mail; letters and digits in upper case for IBAN, MBI,
// DEA and VIN; surrounding space trimmed and inner space collapsed
// otherwise), so the same value in different formats gives the same token. The kind is part of the MAC input,
// so equal strings of different kinds do not share a token.
//
// The same key and value give the same token in every process and package
// (phimask, auditlog, storage); without the key nothing links a token back to
// its value. An empty key still yields a token, but one anyone can recompute
// from a guessed value: callers must supply a secret key of at least 32 bytes.
// Tokenize is safe for concurrent use.
func Tokenize(key []byte, kind Kind, value string) string {
	return tokenWith(hmac.New(sha256.New, key), kind, value)
}

// Tokenizer computes Tokenize's tokens for one key, reusing HMAC states:
// hmac.New allocates and hashes the key on every call, which matters when
// every log record or audit event carries tokens. A Tokenizer is safe for
// concurrent use; its tokens equal Tokenize's for the same key.
type Tokenizer struct{ pool sync.Pool }

// NewTokenizer returns a Tokenizer for key (copied). As for Tokenize, the
// key must be a secret of at least MinKeyLen bytes.
func NewTokenizer(key []byte) *Tokenizer {
	k := append([]byte(nil), key...)
	t := &Tokenizer{}
	t.pool.New = func() any { return hmac.New(sha256.New, k) }
	return t
}

// Token returns the keyed pseudonym of value, as Tokenize does.
func (t *Tokenizer) Token(kind Kind, value string) string {
	mac := t.pool.Get().(hash.Hash)
	mac.Reset()
	out := tokenWith(mac, kind, value)
	t.pool.Put(mac)
	return out
}

// tokenWith computes the token with a fresh or reset HMAC state.
func tokenWith(mac hash.Hash, kind Kind, value string) string {
	norm := normalizeValue(kind, value)
	msg := make([]byte, 0, len(kind)+1+len(norm))
	msg = append(msg, kind...)
	msg = append(msg, 0)
	msg = append(msg, norm...)
	mac.Write(msg)
	var sum [sha256.Size]byte
	var hx [tokenHexLen]byte
	hex.Encode(hx[:], mac.Sum(sum[:0])[:tokenHexLen/2])
	return "[" + string(kind) + ":" + string(hx[:]) + "]"
}

// normalizeValue maps equivalent spellings of a value to one form.
func normalizeValue(kind Kind, value string) string {
	switch kind {
	case KindSSN, KindITIN, KindNPI, KindCreditCard, KindZIP:
		return keepDigits(value)
	case KindPhone, KindFax:
		d := keepDigits(value)
		// "+1 555 234 5678" is the same NANP number as "555-234-5678".
		if len(d) == 11 && d[0] == '1' {
			d = d[1:]
		}
		return d
	case KindEmail:
		return strings.ToLower(strings.TrimSpace(value))
	case KindIBAN, KindMBI, KindDEA, KindVIN:
		return upperAlnum(value)
	default:
		return collapseSpace(value)
	}
}

// collapseSpace trims s and collapses inner runs of white space to one
// space, without allocating when s is already in that form.
func collapseSpace(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == ' ' {
			if i == 0 || i == len(s)-1 || s[i+1] == ' ' {
				clean = false
				break
			}
		} else if c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' || c >= 0x80 {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}

func keepDigits(s string) string {
	if allDigits(s) {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= '0' && c <= '9' {
			b = append(b, c)
		}
	}
	return string(b)
}

func upperAlnum(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(unicode.ToUpper(r))
		}
	}
	return b.String()
}

package phimask

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestTokenize(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef0123456789abcdef")
	other := []byte("fedcba9876543210fedcba9876543210")

	tok := Tokenize(key, KindSSN, "123-45-6789")
	assert.Regexp(t, `^\[SSN:[0-9a-f]{16}\]$`, tok)

	// The documented construction, so other implementations can match it.
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("SSN\x00123456789"))
	assert.Equal(t, "[SSN:"+hex.EncodeToString(mac.Sum(nil)[:8])+"]", tok)

	same := []struct {
		name string
		kind Kind
		a, b string
	}{
		{"ssn formats", KindSSN, "123-45-6789", " 123 45 6789 "},
		{"phone formats", KindPhone, "(555) 234-5678", "555.234.5678"},
		{"phone country code", KindPhone, "+1 555 234 5678", "555-234-5678"},
		{"email case", KindEmail, "Jane.Doe@Example.org", " jane.doe@example.org"},
		{"iban groups", KindIBAN, "DE89 3704 0044 0532 0130 00", "de89370400440532013000"},
		{"mbi dashes", KindMBI, "1EG4-TE5-MK73", "1eg4te5mk73"},
		{"name spacing", KindName, "Jane  Doe", " Jane Doe"},
		{"id trimmed", KindID, "p-77 ", "p-77"},
	}
	for _, tt := range same {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, Tokenize(key, tt.kind, tt.a), Tokenize(key, tt.kind, tt.b))
		})
	}
	assert.NotEqual(t, Tokenize(key, KindSSN, "123456789"), Tokenize(key, KindSSN, "123456788"))
	assert.NotEqual(t, Tokenize(key, KindSSN, "123456789"), Tokenize(other, KindSSN, "123456789"), "key separation")
	assert.NotEqual(t, Tokenize(key, KindMRN, "123456789")[5:], Tokenize(key, KindID, "123456789")[4:], "kind separation")
	assert.NotEqual(t, Tokenize(key, KindName, "Jane Doe"), Tokenize(key, KindName, "jane doe"), "names keep their case")
}

func TestTokenizerMatchesTokenize(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef0123456789abcdef")
	tz := NewTokenizer(key)
	cases := []struct {
		kind  Kind
		value string
	}{
		{KindSSN, "123-45-6789"}, {KindPhone, "+1 (555) 234-5678"}, {KindEmail, " A.B@Example.org "},
		{KindID, "9f3c2a1e-0000-4000-8000-000000000000"}, {KindName, "Jane  Doe"}, {KindMRN, ""},
	}
	for _, tc := range cases {
		assert.Equal(t, Tokenize(key, tc.kind, tc.value), tz.Token(tc.kind, tc.value), "kind %s", tc.kind)
	}
	// Concurrent use shares pooled HMAC states without mixing them up.
	done := make(chan bool)
	for g := 0; g < 8; g++ {
		go func() {
			ok := true
			for i := 0; i < 200; i++ {
				tc := cases[i%len(cases)]
				ok = ok && tz.Token(tc.kind, tc.value) == Tokenize(key, tc.kind, tc.value)
			}
			done <- ok
		}()
	}
	for g := 0; g < 8; g++ {
		assert.True(t, <-done)
	}
}

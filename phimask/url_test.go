package phimask

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRedactURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, want string }{
		{"plain", "https://api.example.com/v1/health?verbose=1", "https://api.example.com/v1/health?verbose=1"},
		{"user info", "https://jdoe:pw@api.example.com/x", "https://REDACTED@api.example.com/x"},
		{"patient id segment", "https://api.example.com/v1/patients/77812/notes", "https://api.example.com/v1/patients/[REDACTED:ID]/notes"},
		{"mrn segment", "/mrn/A-1234/chart", "/mrn/[REDACTED:MRN]/chart"},
		{"ssn in path", "/lookup/123-45-6789", "/lookup/[REDACTED:SSN]"},
		{"email in path escaped", "/users/jd%40example.org/prefs", "/users/[REDACTED:EMAIL]/prefs"},
		{"phi query key", "/search?dob=1980-03-05&lastName=Roe&page=2", "/search?dob=[REDACTED:DATE]&lastName=[REDACTED:NAME]&page=2"},
		{"phi in query value", "/search?q=call+555-234-5678&sort=asc", "/search?q=call [REDACTED:PHONE]&sort=asc"},
		{"fragment", "/p#jd@example.org", "/p#[REDACTED:EMAIL]"},
		{"ip host", "http://192.168.10.20:8080/x", "http://[REDACTED:IP]:8080/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u, err := url.Parse(tt.in)
			require.NoError(t, err)
			assertRedacted(t, tt.want, RedactURL(u))
		})
	}
	assert.Empty(t, RedactURL(nil))
}

func TestHandlerRedactURLUsesOptions(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef0123456789abcdef")
	h := NewHandler(nil, &Options{Key: key, PHIKeys: map[string]Kind{"members": KindMemberID}})
	u, err := url.Parse("/members/XK-1/claims?ssn=123-45-6789")
	require.NoError(t, err)
	got := h.RedactURL(u)
	assertRedacted(t, "/members/"+Tokenize(key, KindMemberID, "XK-1")+"/claims?ssn="+Tokenize(key, KindSSN, "123-45-6789"), got)
	assert.Equal(t, uint64(1), h.Stats().ByKind[KindSSN])
}

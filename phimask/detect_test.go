package phimask

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The values in these tables are synthetic: documented test numbers
// (4111 1111 1111 1111, NPI 1234567893, DEA AP5836727, the CMS sample MBI,
// the ECBS sample IBANs) and made-up names and places.

func TestDetectKinds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		text string
		want []Kind
	}{
		// SSN and ITIN.
		{"ssn dashed", "ssn 123-45-6789 ok", []Kind{KindSSN}},
		{"ssn spaced", "id 123 45 6789 ok", []Kind{KindSSN}},
		{"ssn bare with context", "SSN: 123456789", []Kind{KindSSN}},
		{"ssn bare social security", "social security number 123456789", []Kind{KindSSN}},
		{"ssn bare without context", "ref 123456789", nil},
		{"ssn area 000", "000-12-3456", nil},
		{"ssn area 666", "666-12-3456", nil},
		{"ssn group 00", "123-00-4567", nil},
		{"ssn serial 0000", "123-45-0000", nil},
		{"ssn mixed separators", "123-45 6789", nil},
		{"ssn followed by more groups", "123-45-6789-12", nil},
		{"itin", "ITIN 912-70-1234", []Kind{KindITIN}},
		{"9xx not itin group", "912-40-1234", nil},
		{"ssn bare 9xx with context", "ssn 912701234", []Kind{KindITIN}},
		// NPI, DEA, MBI.
		{"npi valid", "NPI 1234567893", []Kind{KindNPI}},
		{"npi bare valid", "provider 1234567893.", []Kind{KindNPI}},
		{"npi bad check digit", "NPI 1234567890", nil},
		{"npi starts with 3", "NPI 3234567893", []Kind{KindPhone}},
		{"dea valid", "DEA AP5836727", []Kind{KindDEA}},
		{"dea bad check", "DEA AP5836728", nil},
		{"dea lower case", "ap5836727", nil},
		{"mbi dashed", "MBI 1EG4-TE5-MK73", []Kind{KindMBI}},
		{"mbi compact", "mbi 1EG4TE5MK73", []Kind{KindMBI}},
		{"mbi leading zero", "0EG4TE5MK73", nil},
		{"mbi forbidden letter S", "1SG4TE5MK73", nil},
		{"mbi too short", "1EG4TE5MK7", nil},
		{"mbi one dash only", "1EG4-TE5MK73", nil},
		// Cards and IBAN.
		{"visa grouped", "card 4111 1111 1111 1111 exp", []Kind{KindCreditCard}},
		{"visa dashed", "4111-1111-1111-1111", []Kind{KindCreditCard}},
		{"visa compact", "4111111111111111", []Kind{KindCreditCard}},
		{"amex 4-6-5", "3782 822463 10005", []Kind{KindCreditCard}},
		{"card bad luhn", "4111 1111 1111 1112", nil},
		{"card 12 digits", "411111111113", nil},
		{"card issuer 1 (timestamps)", "1733234567123456789", nil},
		{"iban compact", "IBAN DE89370400440532013000", []Kind{KindIBAN}},
		{"iban grouped", "pay to GB82 WEST 1234 5698 7654 32 today", []Kind{KindIBAN}},
		{"iban bad check", "DE89370400440532013001", nil},
		// Phones and fax.
		{"phone parens", "call (555) 234-5678", []Kind{KindPhone}},
		{"phone dashes", "555-234-5678", []Kind{KindPhone}},
		{"phone dots", "555.234.5678", []Kind{KindPhone}},
		{"phone spaces", "555 234 5678", []Kind{KindPhone}},
		{"phone leading 1", "1-555-234-5678", []Kind{KindPhone}},
		{"phone +1", "+1 (555) 234-5678", []Kind{KindPhone}},
		{"phone extension", "555-234-5678 ext. 42", []Kind{KindPhone}},
		{"phone x extension", "555-234-5678x42", []Kind{KindPhone}},
		{"phone bare valid", "5552345678", []Kind{KindPhone}},
		{"phone bare area 0", "0552345678", nil},
		{"e164 uk", "+44 20 7946 0958", []Kind{KindPhone}},
		{"e164 too short", "+44 20 79", nil},
		{"fax", "Fax: (555) 234-5678", []Kind{KindFax}},
		{"fax local", "fax 234-5678", []Kind{KindFax}},
		// E-mail, IP, URL.
		{"email", "mail jane.doe+x@example.org.", []Kind{KindEmail}},
		{"email no tld", "user@localhost", nil},
		{"ipv4", "from 192.168.10.20 at", []Kind{KindIP}},
		{"ipv4 out of range", "1.2.3.256", nil},
		{"ipv4 loopback kept", "127.0.0.1", nil},
		{"ipv6", "client 2001:db8:85a3::8a2e:370:7334 ok", []Kind{KindIP}},
		{"ipv6 loopback kept", "::1", nil},
		{"url", "see https://portal.example.com/u/jdoe?x=1.", []Kind{KindURL}},
		// Dates.
		{"iso date", "on 2024-03-05.", []Kind{KindDate}},
		{"us date", "03/05/2024", []Kind{KindDate}},
		{"us short year", "3/5/24", []Kind{KindDate}},
		{"day month year", "5 Mar 2024", []Kind{KindDate}},
		{"month day year", "March 5, 2024", []Kind{KindDate}},
		{"month abbrev ordinal", "Sept. 3rd, 1999", []Kind{KindDate}},
		{"month year", "since March 2024", []Kind{KindDate}},
		{"dob compact", "DOB: 19800305", []Kind{KindDate}},
		{"dob rfc3339", "DOB: 1980-03-05T00:00:00Z", []Kind{KindDate}},
		{"date invalid month", "2024-13-05", nil},
		{"date invalid day", "2024-03-32", nil},
		{"lower-case month word", "you may 5 times", nil},
		// Addresses, ZIP, age.
		{"street", "lives at 1234 North Elm Street", []Kind{KindAddress}},
		{"street with unit", "1234 Elm St., Apt 5B", []Kind{KindAddress}},
		{"city state zip", "Springfield, IL 62704", []Kind{KindAddress, KindZIP}},
		{"zip+4", "Springfield, IL 62704-1234", []Kind{KindAddress, KindZIP}},
		{"zip context", "zip code 62704", []Kind{KindZIP}},
		{"five digits alone", "port 62704", nil},
		{"state-like not state", "XX 62704", nil},
		{"age years old", "a 92 years old man", []Kind{KindAge}},
		{"age hyphenated", "92-year-old", []Kind{KindAge}},
		{"age context", "age: 95", []Kind{KindAge}},
		{"age 89 kept", "89 years old", nil},
		{"age context 45 kept", "aged 45", nil},
		// Context identifiers.
		{"mrn", "MRN: A1234567", []Kind{KindMRN}},
		{"mrn glued", "MRN12345678", []Kind{KindMRN}},
		{"ssn glued", "SSN123456789", []Kind{KindSSN}},
		{"medical record", "medical record number 55-1234", []Kind{KindMRN}},
		{"account", "account number 99-1234", []Kind{KindAccount}},
		{"account no qualifier", "account locked for 30 minutes", nil},
		{"member id", "member id XK99812", []Kind{KindMemberID}},
		{"member since", "member since 2019", nil},
		{"health plan", "health plan id HP-77812", []Kind{KindMemberID}},
		{"policy", "policy #P-5566", []Kind{KindPolicy}},
		{"license", "license no. D1234567", []Kind{KindLicense}},
		{"vin by check digit", "car 1HGCM82633A004352", []Kind{KindVIN}},
		{"vin bad check digit", "car 1HGCM82643A004352", nil},
		{"vin context", "VIN: 1HGCM82643A004352", []Kind{KindVIN}},
		{"device serial", "device serial SN-88123", []Kind{KindDevice}},
		// Near misses for context kinds: the word without a value.
		{"fax without number", "fax machine offline", nil},
		{"url without slashes", "see http:/x and mailto:", nil},
		{"street without number", "the Main Street clinic", nil},
		{"number without street suffix", "4 West Wing", nil},
		{"mrn pending", "MRN pending review", nil},
		{"policy update", "policy update 2 applied", nil},
		{"license expired", "license expired", nil},
		{"device offline", "device offline for 5 minutes", nil},
		{"email without tld", "a@b", nil},
		{"ip with five parts", "1.2.3.4.5", nil},
		{"age word without age", "age unknown", nil},
		// Names.
		{"title", "seen by Dr. Jane O'Neil today", []Kind{KindName}},
		{"title all caps", "Mr. JOHN SMITH", []Kind{KindName}},
		{"patient", "patient John Smith admitted", []Kind{KindName}},
		{"patient colon", "Patient: Jane Doe", []Kind{KindName}},
		{"patient not a name", "patient SSN 123-45-6789", []Kind{KindSSN}},
		{"patient lower", "the patient was seen", nil},
		{"name colon", "name: Mary-Jane McDonald", []Kind{KindName}},
		{"spoke with", "spoke with Anna Schmidt", []Kind{KindName}},
		{"spoke with title", "spoke with Dr. House", []Kind{KindName}},
		{"relative", "his wife Mary came", []Kind{KindName}},
		{"doctor", "seen by doctor Gregory House", []Kind{KindName}},
		{"nurse lower-case word after", "the nurse said", nil},
		{"ms as unit", "took 5 ms John", nil},
		{"non-ASCII name", "patient José Müller-Łukasz admitted", []Kind{KindName}},
		{"curly apostrophe", "Dr. Zoë O’Brien", []Kind{KindName}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, kindsOf(tt.text))
		})
	}
}

func TestMustNotFlag(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"uuid":            "request 123e4567-e89b-12d3-a456-426614174000 done",
		"uuid digits":     "12345678-1234-1234-1234-123456789012",
		"sha256":          "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		"sha1":            "commit 2fd4e1c67a2d28fced849ee1bb76e7391b93eb12",
		"trace id":        "trace_id=4bf92f3577b34da6a3ce929d0e0e4736",
		"span id":         "span_id=00f067aa0ba902b7",
		"traceparent":     "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"semver":          "version 1.2.3 and v2.15.0-rc.1 and go1.26.8",
		"dotted oid":      "oid 1.2.840.113549.1.1.11",
		"durations":       "took 1h2m3.5s, 250ms, 1.5s, 30 minutes",
		"byte counts":     "wrote 1048576 bytes, 12MB, 1.5 GiB",
		"status codes":    "HTTP 404, status=503, 200 OK",
		"ports":           "listening on :8080 and localhost:5432 and 0.0.0.0:443",
		"rfc3339 event":   "at 2024-03-05T14:07:00Z and 2024-03-05T14:07:00.123456+02:00",
		"rfc3339 space":   "at 2024-03-05 14:07:00Z",
		"go types":        "*http.Request []string map[string]int sync.Mutex main.(*Handler).Handle *model.Patient",
		"times of day":    "at 14:07:00 and 09:30",
		"counts":          "processed 123456789 rows in 42 batches",
		"unix time":       "ts=1733234567123",
		"mac like":        "00:1a:2b:3c:4d:5e",
		"plain prose":     "The service restarted after the configuration was reloaded by the operator.",
		"lower month":     "you may retry",
		"percent":         "cpu 93.5% mem 91%",
		"k8s names":       "pod api-7d9f8b6c5-x2x4z in namespace prod",
		"version date":    "golang.org/x/exp v0.0.0-20260813180055-c1d0aacb2297",
		"negative number": "delta -123456789",
		"calver":          "release 2024.1.5 and 24.04",
		"decimal":         "pi 3.14159 ratio 0.75",
		"hex literal":     "flags 0x1F4 mask 0xdeadbeef",
	}
	for name, text := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got := Detect(text)
			assert.Empty(t, got, "findings in %q", text)
			assertRedacted(t, text, Redact(text))
		})
	}
}

func TestDetectOffsets(t *testing.T) {
	t.Parallel()
	text := "Patient: Jane Doe, SSN 123-45-6789, phone (555) 234-5678, mail jd@example.org."
	got := Detect(text)
	require.Len(t, got, 4)
	want := []struct {
		k    Kind
		span string
	}{{KindName, "Jane Doe"}, {KindSSN, "123-45-6789"}, {KindPhone, "(555) 234-5678"}, {KindEmail, "jd@example.org"}}
	for i, f := range got {
		assert.Equal(t, want[i].k, f.Kind)
		assert.True(t, want[i].span == text[f.Start:f.End], "finding %d spans other bytes", i)
	}
}

func TestRedactKeepsTheRest(t *testing.T) {
	t.Parallel()
	in := "admitted patient SSN 123-45-6789 to ward 4"
	assertRedacted(t, "admitted patient SSN [REDACTED:SSN] to ward 4", Redact(in))
	in = "ünïcode ✓ before 555-234-5678 after ✓"
	assertRedacted(t, "ünïcode ✓ before [REDACTED:PHONE] after ✓", Redact(in))
}

func TestRedactNoAllocWithoutPHI(t *testing.T) {
	text := strings.Repeat("The service restarted after 42 requests in 250ms. ", 20)
	allocs := testing.AllocsPerRun(100, func() {
		if Redact(text) != text {
			t.Fatal("changed")
		}
	})
	assert.Zero(t, allocs)
}

func TestValidators(t *testing.T) {
	t.Parallel()
	assert.True(t, validNPI("1234567893"))
	assert.False(t, validNPI("1234567890"))
	assert.True(t, validDEA("AP5836727"))
	assert.False(t, validDEA("AP5836720"))
	assert.True(t, validMBI([]byte("1EG4TE5MK73")))
	assert.True(t, validVIN("1HGCM82633A004352"))
	assert.True(t, validVIN("1M8GDM9AXKP042788"), "check digit X")
	assert.True(t, validIBAN([]byte("DE89370400440532013000")))
	assert.True(t, validIBAN([]byte("GB82WEST12345698765432")))
	assert.False(t, validIBAN([]byte("GB82WEST12345698765433")))
	assert.True(t, luhn([]byte("4111111111111111"), 0))
	k, ok := ssnKind("912", "70", "1234")
	assert.True(t, ok)
	assert.Equal(t, kITIN, k)
}

func TestKindsFilter(t *testing.T) {
	t.Parallel()
	h := NewHandler(nil, &Options{Kinds: []Kind{KindSSN}})
	assertRedacted(t, "ssn [REDACTED:SSN] mail a@example.org", h.Redact("ssn 123-45-6789 mail a@example.org"))
	// With URL detection off, the URL is scanned inside.
	h = NewHandler(nil, &Options{Kinds: []Kind{KindEmail, KindSSN}})
	assertRedacted(t, "https://x.example/p?m=[REDACTED:EMAIL]", h.Redact("https://x.example/p?m=jd@example.org"))
	assert.Len(t, Kinds(), 25)
}

func TestRedactLargeInputsStayLinear(t *testing.T) {
	t.Parallel()
	// Many distinct values in a large text: propagation is bounded, and
	// every value is still replaced where it was detected.
	var b strings.Builder
	for i := 0; b.Len() < 1<<20; i++ {
		area := 100 + i%500 // 100-599: never the invalid 666
		fmt.Fprintf(&b, "ssn %03d-%02d-%04d; ", area, 1+i%99, 1+i%9999)
	}
	out := Redact(b.String())
	assertNoLeak(t, out, []string{"ssn 1"}, nil)
	assert.Equal(t, strings.Count(b.String(), "ssn "), strings.Count(out, "ssn [REDACTED:SSN]"))
}

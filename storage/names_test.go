package storage_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/brianvoe/gofakeit/v7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/phiguard/phiguard/storage"
)

// Names with synthetic PHI are refused, and neither the error nor the
// stored objects reveal the value.
func TestPHINamesRefused(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, e *env) {
		testPHINames(t, e)
	})
}

func testPHINames(t *testing.T, e *env) {
	f := gofakeit.New(7)
	ssn := func() string {
		// A well-formed SSN: area 100-665, group 10-99, serial 1000-9999.
		return fmt.Sprintf("%03d-%02d-%04d", f.IntRange(100, 665), f.IntRange(10, 99), f.IntRange(1000, 9999))
	}
	date := func() string { return f.DateRange(mustDate("1930-01-01"), mustDate("2010-12-31")).Format("2006-01-02") }
	phone := func() string {
		return fmt.Sprintf("%03d-%03d-%04d", f.IntRange(201, 989), f.IntRange(200, 999), f.IntRange(1000, 9999))
	}
	cases := []struct {
		name, kind string
		value      func() string
		format     string
	}{
		{"SSN in a file name", "SSN", ssn, "patients/%s/intake.pdf"},
		{"SSN with underscores", "SSN", ssn, "scan_%s_front.png"},
		{"date of birth", "DATE", date, "reports/dob-%s/summary"},
		{"phone number", "PHONE", phone, "callbacks/%s.wav"},
	}
	{
		s := e.newStore(t, newKey(t, "k"), nil)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				v := tc.value()
				name := fmt.Sprintf(tc.format, v)
				_, err := s.Put(ctxT(t), name, strings.NewReader("x"), nil)
				require.ErrorIs(t, err, storage.ErrNameRefused)
				msg := err.Error()
				assert.Contains(t, msg, tc.kind)
				if strings.Contains(msg, v) || strings.Contains(msg, name) {
					t.Errorf("error message contains the %s value", tc.kind)
				}
				assert.False(t, e.exists(t, name), "refused name was stored")
				require.ErrorIs(t, storage.CheckName(name), storage.ErrNameRefused)
			})
		}
		// Opaque names pass.
		for range 20 {
			obj := putBytes(t, s, "", []byte("x"))
			require.NoError(t, storage.CheckName(obj.Name))
		}
	}
}

func mustDate(s string) time.Time {
	d, err := time.Parse("2006-01-02", s)
	if err != nil {
		panic(err)
	}
	return d
}

package secrets_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/phiguard/phiguard/secrets"
)

// dotEnvLoader returns a development loader over a .env file with content.
func dotEnvLoader(t *testing.T, content string) *secrets.Loader {
	t.Helper()
	l, err := secrets.NewLoader(dev, secrets.FromDotEnv(writeFile(t, t.TempDir(), ".env", content)))
	require.NoError(t, err)
	return l
}

func TestBindTypes(t *testing.T) {
	t.Parallel()
	vals := synthetic(30, 2)
	l := dotEnvLoader(t, "PASSWORD="+vals[0]+"\nRAW="+vals[1]+"\nPORT=8443\nDEBUG=true\nTIMEOUT=1m30s\nRATIO=0.25\nSMALL=-7\nMASK=0x1F\nBIG=18446744073709551615\n")
	type DB struct {
		Password secrets.Value `secret:"PASSWORD,required"`
		Port     uint16        `secret:"PORT"`
	}
	var cfg struct {
		DB
		Raw       []byte        `secret:"RAW"`
		Plain     string        `secret:"PASSWORD"`
		Debug     bool          `secret:"DEBUG"`
		Timeout   time.Duration `secret:"TIMEOUT"`
		Ratio     float64       `secret:"RATIO"`
		Small     int8          `secret:"SMALL"`
		Mask      uint          `secret:"MASK"`
		Big       uint64        `secret:"BIG"`
		Region    string        `secret:"REGION,default=westeurope"`
		Retries   int           `secret:"RETRIES,default=3"`
		Untouched string        `secret:"NOT_SET"`
		Ignored   string        `secret:"-"`
		Other     int
	}
	cfg.Untouched = "kept"
	require.NoError(t, l.Bind(context.Background(), &cfg))
	assert.True(t, cfg.Password.Equal(secrets.NewValue(vals[0])))
	assert.Equal(t, vals[0], cfg.Plain)
	assert.Equal(t, vals[1], string(cfg.Raw))
	assert.Equal(t, uint16(8443), cfg.Port)
	assert.True(t, cfg.Debug)
	assert.Equal(t, 90*time.Second, cfg.Timeout)
	assert.InDelta(t, 0.25, cfg.Ratio, 1e-9)
	assert.Equal(t, int8(-7), cfg.Small)
	assert.Equal(t, uint(31), cfg.Mask)
	assert.Equal(t, uint64(18446744073709551615), cfg.Big)
	assert.Equal(t, "westeurope", cfg.Region)
	assert.Equal(t, 3, cfg.Retries)
	assert.Equal(t, "kept", cfg.Untouched, "an optional absent key leaves the field alone")
	require.NoError(t, l.Check(context.Background()))
}

func TestBindBadTargets(t *testing.T) {
	t.Parallel()
	l := dotEnvLoader(t, "A=1\n")
	var s struct {
		A string `secret:"A"`
	}
	var n int
	var nilPtr *struct{}
	tests := []struct {
		name string
		dst  any
	}{
		{"nil", nil},
		{"struct value, not pointer", s},
		{"pointer to int", &n},
		{"nil pointer", nilPtr},
		{"unsupported type map", &struct {
			M map[string]string `secret:"A"`
		}{}},
		{"unsupported type pointer", &struct {
			P *string `secret:"A"`
		}{}},
		{"unsupported type slice", &struct {
			S []string `secret:"A"`
		}{}},
		{"unsupported type struct", &struct {
			T time.Time `secret:"A"`
		}{}},
		{"invalid key in tag", &struct {
			A string `secret:"a-lower"`
		}{}},
		{"empty key in tag", &struct {
			A string `secret:",required"`
		}{}},
		{"unknown option", &struct {
			A string `secret:"A,requird"`
		}{}},
		{"required with default", &struct {
			A string `secret:"A,required,default=x"`
		}{}},
		{"unexported tagged field", &struct {
			a string `secret:"A"` //nolint:unused // the point of the case
		}{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := l.Bind(context.Background(), tc.dst)
			require.Error(t, err)
			assert.ErrorIs(t, err, secrets.ErrInvalidTarget)
		})
	}
}

func TestBindErrorsAllAtOnce(t *testing.T) {
	t.Parallel()
	l := dotEnvLoader(t, "PORT=abc\nDEBUG=maybe\nTIMEOUT=soon\nSMALL=300\nRATIO=x\nCOUNT=-1\n")
	var cfg struct {
		DB      secrets.Value `secret:"DB_PASSWORD,required"`
		API     secrets.Value `secret:"API_KEY,required"`
		Port    int           `secret:"PORT,required"`
		Debug   bool          `secret:"DEBUG"`
		Timeout time.Duration `secret:"TIMEOUT"`
		Small   int8          `secret:"SMALL"`
		Ratio   float32       `secret:"RATIO"`
		Count   uint          `secret:"COUNT"`
		BadDef  int           `secret:"NOT_SET,default=many"`
		Again   secrets.Value `secret:"DB_PASSWORD,required"`
	}
	err := l.Bind(context.Background(), &cfg)
	require.Error(t, err)
	var be *secrets.BindError
	require.ErrorAs(t, err, &be)
	assert.Equal(t, []string{"DB_PASSWORD", "API_KEY"}, be.Missing, "every missing key, once, in field order")
	assert.Len(t, be.Errs, 7)
	assert.ErrorIs(t, err, secrets.ErrNotFound)
	assert.ErrorIs(t, err, secrets.ErrParse)
	msg := err.Error()
	for _, want := range []string{"DB_PASSWORD", "API_KEY", "PORT", "DEBUG", "TIMEOUT", "SMALL", "RATIO", "COUNT", "NOT_SET", "out of range", "integer (int)", "duration"} {
		assert.Contains(t, msg, want)
	}
	// The offending values never appear (they are synthetic, not secrets).
	for _, v := range []string{"abc", "maybe", "soon", "300", "many", "-1"} {
		assert.NotContains(t, msg, v)
	}

	// Readiness knows the required keys are missing.
	require.Error(t, l.Check(context.Background()))
	assert.Contains(t, l.Check(context.Background()).Error(), "DB_PASSWORD")
}

func TestBindCanceled(t *testing.T) {
	t.Parallel()
	fv := newFakeVault()
	fv.delay = time.Hour
	fv.set("DB-PASSWORD", "x")
	l := newVaultLoader(t, fv, dev, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var cfg struct {
		DB secrets.Value `secret:"DB_PASSWORD,required"`
	}
	err := l.Bind(ctx, &cfg)
	require.ErrorIs(t, err, context.Canceled)
}

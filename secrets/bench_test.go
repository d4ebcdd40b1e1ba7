package secrets_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/phiguard/phiguard/secrets"
)

const (
	benchSecrets = 50
	benchLatency = 20 * time.Millisecond
)

// benchTarget builds a struct type with benchSecrets required Value fields.
func benchTarget() reflect.Type {
	fields := make([]reflect.StructField, benchSecrets)
	for i := range fields {
		fields[i] = reflect.StructField{
			Name: fmt.Sprintf("F%02d", i),
			Type: reflect.TypeFor[secrets.Value](),
			Tag:  reflect.StructTag(fmt.Sprintf(`secret:"SECRET_%02d,required"`, i)),
		}
	}
	return reflect.StructOf(fields)
}

func benchVault() *fakeVault {
	fv := newFakeVault()
	fv.delay = benchLatency
	for i, v := range synthetic(40, benchSecrets) {
		fv.set(fmt.Sprintf("SECRET-%02d", i), v)
	}
	return fv
}

// BenchmarkOneGet is the baseline: one Get from a fresh loader against a
// vault that answers each GET after 20 ms.
func BenchmarkOneGet(b *testing.B) {
	fv := benchVault()
	client := fv.client(b)
	b.ReportAllocs()
	for b.Loop() {
		l, err := secrets.NewLoader(dev, secrets.FromKeyVault(client, nil))
		require.NoError(b, err)
		_, err = l.Get(context.Background(), "SECRET_00")
		require.NoError(b, err)
	}
}

// BenchmarkBind50 binds 50 secrets from a fresh loader against the same
// vault. Compare ns/op with BenchmarkOneGet: parallelism=1 is the sequential
// baseline (about 50x), the default 8 needs ceil(50/8) = 7 rounds, 25
// needs 2 and 50 needs 1.
func BenchmarkBind50(b *testing.B) {
	typ := benchTarget()
	for _, p := range []int{1, secrets.DefaultParallelism, 25, benchSecrets} {
		b.Run(fmt.Sprintf("parallelism=%d", p), func(b *testing.B) {
			fv := benchVault()
			client := fv.client(b)
			opts := &secrets.Options{Mode: secrets.ModeDevelopment, Parallelism: p}
			b.ReportAllocs()
			for b.Loop() {
				l, err := secrets.NewLoader(opts, secrets.FromKeyVault(client, nil))
				require.NoError(b, err)
				require.NoError(b, l.Bind(context.Background(), reflect.New(typ).Interface()))
			}
		})
	}
}

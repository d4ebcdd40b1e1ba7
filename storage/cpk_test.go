package storage_test

import (
	"crypto/sha256"
	"encoding/base64"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/phiguard/phiguard/internal/testenv"
	"github.com/phiguard/phiguard/storage"
)

// Customer-provided keys and encryption scopes are passed through to the
// service. Azurite accepts and ignores them, so this checks only that the
// options are accepted on every call Put, Get and Rewrap make; their effect
// needs a real storage account.
func TestServerSideOptionsPassThrough(t *testing.T) {
	t.Parallel()
	key := randomBytes(32)
	h := sha256.Sum256(key)
	cases := []struct {
		name string
		opts storage.BlobStoreOptions
	}{
		{"encryption scope", storage.BlobStoreOptions{EncryptionScope: "phi-scope"}},
		{"customer-provided key", storage.BlobStoreOptions{CPK: &blob.CPKInfo{
			EncryptionKey:       to.Ptr(base64.StdEncoding.EncodeToString(key)),
			EncryptionKeySHA256: to.Ptr(base64.StdEncoding.EncodeToString(h[:])),
			EncryptionAlgorithm: to.Ptr(blob.EncryptionAlgorithmTypeAES256),
		}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := testenv.NewContainer(t)
			kek := newKey(t, "k")
			s, err := storage.NewBlobStore(c, kek, &tc.opts)
			require.NoError(t, err)
			data := randomBytes(region + 5)
			putBytes(t, s, "doc", data)
			got, _, err := getAll(t, s, "doc")
			require.NoError(t, err)
			assert.Equal(t, data, got)
			require.NoError(t, s.Rewrap(ctxT(t), "doc", kek))
			require.NoError(t, s.Delete(ctxT(t), "doc"))
		})
	}
}

package storage_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys/fake"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/phiguard/phiguard/storage"
)

const fakeVault = "https://phiguard-test.vault.azure.net"

// fakeVaultKeys is a Key Vault holding RSA key versions, behind the azkeys
// fake server: wrapKey/unwrapKey do real RSA-OAEP-256.
type fakeVaultKeys struct {
	mu       sync.Mutex
	versions map[string]*rsa.PrivateKey // "name/version"
	current  map[string]string          // name -> current version
	down     bool
	calls    int
}

func newFakeVault(t *testing.T) (*fakeVaultKeys, *azkeys.Client) {
	v := &fakeVaultKeys{versions: map[string]*rsa.PrivateKey{}, current: map[string]string{}}
	srv := fake.Server{
		WrapKey: func(_ context.Context, name, version string, p azkeys.KeyOperationParameters, _ *azkeys.WrapKeyOptions) (resp azfake.Responder[azkeys.WrapKeyResponse], errResp azfake.ErrorResponder) {
			key, ver, err := v.key(name, version)
			if err != nil {
				errResp.SetResponseError(http.StatusNotFound, "KeyNotFound")
				return
			}
			if p.Algorithm == nil || *p.Algorithm != azkeys.EncryptionAlgorithmRSAOAEP256 {
				errResp.SetResponseError(http.StatusBadRequest, "BadParameter")
				return
			}
			out, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &key.PublicKey, p.Value, nil)
			if err != nil {
				errResp.SetError(err)
				return
			}
			kid := azkeys.ID(fakeVault + "/keys/" + name + "/" + ver)
			resp.SetResponse(http.StatusOK, azkeys.WrapKeyResponse{KeyOperationResult: azkeys.KeyOperationResult{KID: &kid, Result: out}}, nil)
			return
		},
		UnwrapKey: func(_ context.Context, name, version string, p azkeys.KeyOperationParameters, _ *azkeys.UnwrapKeyOptions) (resp azfake.Responder[azkeys.UnwrapKeyResponse], errResp azfake.ErrorResponder) {
			key, ver, err := v.key(name, version)
			if err != nil {
				errResp.SetResponseError(http.StatusNotFound, "KeyNotFound")
				return
			}
			out, err := rsa.DecryptOAEP(sha256.New(), nil, key, p.Value, nil)
			if err != nil {
				errResp.SetResponseError(http.StatusBadRequest, "BadParameter")
				return
			}
			kid := azkeys.ID(fakeVault + "/keys/" + name + "/" + ver)
			resp.SetResponse(http.StatusOK, azkeys.UnwrapKeyResponse{KeyOperationResult: azkeys.KeyOperationResult{KID: &kid, Result: out}}, nil)
			return
		},
	}
	client, err := azkeys.NewClient(fakeVault, &azfake.TokenCredential{}, &azkeys.ClientOptions{
		ClientOptions: azcore.ClientOptions{Transport: fake.NewServerTransport(&srv)},
	})
	require.NoError(t, err)
	return v, client
}

func (v *fakeVaultKeys) key(name, version string) (*rsa.PrivateKey, string, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.calls++
	// The fake's path pattern lets the name swallow "/version".
	if n, ver, ok := strings.Cut(name, "/"); ok && version == "" {
		name, version = n, ver
	}
	if v.down {
		return nil, "", errors.New("down")
	}
	if version == "" {
		version = v.current[name]
	}
	k, ok := v.versions[name+"/"+version]
	if !ok {
		return nil, "", errors.New("no such key")
	}
	return k, version, nil
}

// rotate creates a new current version of name.
func (v *fakeVaultKeys) rotate(t *testing.T, name, version string) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	v.mu.Lock()
	defer v.mu.Unlock()
	v.versions[name+"/"+version] = k
	v.current[name] = version
}

func TestKeyVaultKey(t *testing.T) {
	t.Parallel()
	vault, client := newFakeVault(t)
	vault.rotate(t, "phi-kek", "v1")
	forEachBackend(t, func(t *testing.T, e *env) {
		kv, err := storage.NewKeyVaultKey(client, "phi-kek", "")
		require.NoError(t, err)
		s := e.newStore(t, kv, nil)
		require.NoError(t, s.Check(ctxT(t)))
		data := randomBytes(region + 3)
		obj := putBytes(t, s, "kv-doc", data)
		assert.Equal(t, fakeVault+"/keys/phi-kek/v1", obj.KeyID)
		_, md := e.readRaw(t, "kv-doc")
		assert.Contains(t, md["encryptiondata"], `"Algorithm":"RSA-OAEP-256"`)
		assert.Contains(t, md["encryptiondata"], `"KeyId":"`+fakeVault+`/keys/phi-kek/v1"`)

		got, _, err := getAll(t, s, "kv-doc")
		require.NoError(t, err)
		assert.Equal(t, data, got)

		// A pinned version reads the object too; a different key name does not.
		pinned, err := storage.NewKeyVaultKey(client, "phi-kek", "v1")
		require.NoError(t, err)
		got, _, err = getAll(t, e.newStore(t, pinned, nil), "kv-doc")
		require.NoError(t, err)
		assert.Equal(t, data, got)
		other, err := storage.NewKeyVaultKey(client, "other-kek", "")
		require.NoError(t, err)
		_, _, err = getAll(t, e.newStore(t, other, nil), "kv-doc")
		require.ErrorIs(t, err, storage.ErrKeyMismatch)

		// A wrapped key altered in the metadata fails authentication.
		raw, md := e.readRaw(t, "kv-doc")
		md["encryptiondata"] = strings.Replace(md["encryptiondata"], `"EncryptedKey":"`, `"EncryptedKey":"AAAA`, 1)
		e.writeRaw(t, "kv-tampered", raw, md)
		_, _, err = getAll(t, s, "kv-tampered")
		require.ErrorIs(t, err, storage.ErrAuthentication)

		// Local key to Key Vault, by Rewrap.
		lk := newKey(t, "dev-key")
		sl := e.newStore(t, lk, nil)
		putBytes(t, sl, "local-doc", data)
		require.NoError(t, sl.Rewrap(ctxT(t), "local-doc", kv))
		got, obj2, err := getAll(t, s, "local-doc")
		require.NoError(t, err)
		assert.Equal(t, data, got)
		assert.Equal(t, fakeVault+"/keys/phi-kek/v1", obj2.KeyID)
	})
}

// kekFolderStore is a folder store whose content keys are wrapped by version
// v1 of the fake vault's key "kek".
func kekFolderStore(t *testing.T) (*fakeVaultKeys, *storage.KeyVaultKey, *env, *storage.Store) {
	t.Helper()
	vault, client := newFakeVault(t)
	vault.rotate(t, "kek", "v1")
	kv, err := storage.NewKeyVaultKey(client, "kek", "")
	require.NoError(t, err)
	e := newDirEnv(t)
	return vault, kv, e, e.newStore(t, kv, nil)
}

func TestKeyVaultRotationKeepsOldVersionsReadable(t *testing.T) {
	t.Parallel()
	vault, kv, e, s := kekFolderStore(t)
	putBytes(t, s, "old", []byte("written under v1"))
	vault.rotate(t, "kek", "v2")
	obj := putBytes(t, s, "new", []byte("written under v2"))
	assert.Equal(t, fakeVault+"/keys/kek/v2", obj.KeyID)
	for name, want := range map[string]string{"old": "written under v1", "new": "written under v2"} {
		got, _, err := getAll(t, s, name)
		require.NoError(t, err)
		assert.Equal(t, want, string(got))
	}
	// Rewrap moves the old object to the current version.
	require.NoError(t, s.Rewrap(ctxT(t), "old", kv))
	_, md := e.readRaw(t, "old")
	assert.Contains(t, md["encryptiondata"], "/keys/kek/v2")
}

func TestKeyVaultOutage(t *testing.T) {
	t.Parallel()
	vault, _, e, s := kekFolderStore(t)
	putBytes(t, s, "doc", []byte("x"))
	vault.mu.Lock()
	vault.down = true
	vault.mu.Unlock()
	require.Error(t, s.Check(ctxT(t)))
	_, err := s.Put(ctxT(t), "doc2", bytesReader("y"), nil)
	require.Error(t, err)
	var re *azcore.ResponseError
	require.ErrorAs(t, err, &re)
	_, _, err = getAll(t, s, "doc")
	require.Error(t, err)
	assert.False(t, e.exists(t, "doc2"))
}

func TestNewKeyValidation(t *testing.T) {
	t.Parallel()
	_, err := storage.NewLocalKey("", make([]byte, 32))
	require.Error(t, err)
	_, err = storage.NewLocalKey("k", make([]byte, 16))
	require.Error(t, err)
	_, err = storage.NewKeyVaultKey(nil, "k", "")
	require.Error(t, err)
	_, client := newFakeVault(t)
	_, err = storage.NewKeyVaultKey(client, "", "")
	require.Error(t, err)
}

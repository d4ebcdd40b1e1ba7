package storage_test

import (
	"context"
	"io"
	"net/url"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/phiguard/phiguard/internal/testenv"
	"github.com/phiguard/phiguard/storage"
)

// gateReader produces data and runs trip once, after limit bytes.
type gateReader struct {
	n, limit, total int
	trip            func()
}

func (g *gateReader) Read(p []byte) (int, error) {
	if g.n >= g.total {
		return 0, nil
	}
	if g.n >= g.limit && g.trip != nil {
		g.trip()
		g.trip = nil
	}
	p = p[:min(len(p), g.total-g.n)]
	for i := range p {
		p[i] = byte(i)
	}
	g.n += len(p)
	return len(p), nil
}

func containerName(c *container.Client) string {
	u, _ := url.Parse(c.URL())
	return path.Base(u.Path)
}

// Azurite goes away in the middle of an upload (the gate cuts every
// connection and refuses new ones): Put fails with a clear error, and no
// blob is visible once Azurite is back.
func TestAzuriteOutageMidUpload(t *testing.T) {
	t.Parallel()
	az := testenv.Shared(t)
	direct := az.NewContainer(t)
	cs, gate := az.GatedConnectionString(t)
	svc, err := azblob.NewClientFromConnectionString(cs, &azblob.ClientOptions{ClientOptions: azcore.ClientOptions{
		Retry: policy.RetryOptions{MaxRetries: 2, RetryDelay: 20 * time.Millisecond, MaxRetryDelay: 100 * time.Millisecond},
	}})
	require.NoError(t, err)
	gated := svc.ServiceClient().NewContainerClient(containerName(direct))
	kek := newKey(t, "k")
	s, err := storage.NewBlobStore(gated, kek, &storage.BlobStoreOptions{Options: storage.Options{Concurrency: 2}})
	require.NoError(t, err)
	require.NoError(t, s.Check(ctxT(t)))

	const name = "outage-doc"
	_, err = s.Put(ctxT(t), name, &gateReader{limit: 12 * mib, total: 40 * mib, trip: gate.Close}, nil)
	require.Error(t, err)
	msg := err.Error()
	t.Logf("Put during the outage: %s", msg)
	assert.True(t, strings.HasPrefix(msg, "storage: put: "), "error: %s", msg)
	assert.True(t, strings.Contains(msg, "stage block") || strings.Contains(msg, "commit"), "error does not say what failed: %s", msg)
	assert.Contains(t, msg, "request", "error does not say the service was unreachable: %s", msg)
	assert.NotContains(t, msg, name, "error contains the object name")
	require.Error(t, s.Check(ctxT(t)))

	gate.Open()
	assert.False(t, blobEnv(direct).exists(t, name), "a failed upload left a blob")
	require.NoError(t, s.Check(ctxT(t)))
	// The store recovers once the service is back.
	data := randomBytes(region + 1)
	putBytes(t, s, name, data)
	got, _, err := getAll(t, s, name)
	require.NoError(t, err)
	assert.Equal(t, data, got)
}

// Azurite goes away during a Get: the read fails, no plaintext beyond the
// authenticated regions is returned.
func TestAzuriteOutageMidDownload(t *testing.T) {
	t.Parallel()
	az := testenv.Shared(t)
	direct := az.NewContainer(t)
	cs, gate := az.GatedConnectionString(t)
	svc, err := azblob.NewClientFromConnectionString(cs, &azblob.ClientOptions{ClientOptions: azcore.ClientOptions{
		Retry: policy.RetryOptions{MaxRetries: 1, RetryDelay: 20 * time.Millisecond, MaxRetryDelay: 50 * time.Millisecond},
	}})
	require.NoError(t, err)
	s, err := storage.NewBlobStore(svc.ServiceClient().NewContainerClient(containerName(direct)), newKey(t, "k"), nil)
	require.NoError(t, err)
	// More than the reader's read-ahead (Concurrency+1 regions) and the
	// socket buffers can hold, so the outage must cut the download.
	data := randomBytes(16 * region)
	putBytes(t, s, "big", data)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rc, _, err := s.Get(ctx, "big")
	require.NoError(t, err)
	defer rc.Close()
	buf := make([]byte, region)
	got, err := rc.Read(buf)
	require.NoError(t, err)
	gate.Close()
	for err == nil {
		var n int
		n, err = rc.Read(buf)
		got += n
	}
	require.Error(t, err)
	require.NotErrorIs(t, err, io.EOF, "the outage must show as an error, not as the end of the object")
	assert.NotContains(t, err.Error(), "big")
	assert.Less(t, got, len(data))
}

package testenv_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/phiguard/phiguard/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func TestSharedUploadDownload(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := testenv.NewContainer(t)

	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"small", []byte("hello from phiguard")},
		{"one MiB", bytes.Repeat([]byte{0xA5}, 1<<20)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := c.NewBlockBlobClient("blob-" + tc.name)
			_, err := b.UploadBuffer(ctx, tc.data, nil)
			require.NoError(t, err)
			resp, err := b.DownloadStream(ctx, nil)
			require.NoError(t, err)
			got, err := io.ReadAll(resp.Body)
			require.NoError(t, resp.Body.Close())
			require.NoError(t, err)
			assert.Equal(t, len(tc.data), len(got))
			assert.True(t, bytes.Equal(tc.data, got), "downloaded bytes differ")
		})
	}
}

func TestSharedIsOneInstance(t *testing.T) {
	a, b := testenv.Shared(t), testenv.Shared(t)
	assert.Same(t, a, b)
	assert.Contains(t, a.ConnectionString(), "AccountName="+testenv.AccountName)
}

func TestContainersAreIsolated(t *testing.T) {
	ctx := context.Background()
	c1, c2 := testenv.NewContainer(t), testenv.NewContainer(t)
	_, err := c1.NewBlockBlobClient("x").UploadBuffer(ctx, []byte("1"), nil)
	require.NoError(t, err)
	_, err = c2.NewBlockBlobClient("x").GetProperties(ctx, nil)
	require.Error(t, err)
	assert.True(t, bloberror.HasCode(err, bloberror.BlobNotFound), "got %v", err)
}

func TestGateOutageKeepsData(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	az := testenv.Shared(t)
	gated := path.Base(az.NewContainer(t).URL()) // a fresh container, used through the gate
	conn, gate := az.GatedConnectionString(t)
	noRetry := &azblob.ClientOptions{}
	noRetry.Retry.MaxRetries = -1
	client, err := azblob.NewClientFromConnectionString(conn, noRetry)
	require.NoError(t, err)
	_, err = client.UploadBuffer(ctx, gated, "kept", []byte("survives an outage"), nil)
	require.NoError(t, err)

	gate.Close()
	_, err = client.UploadBuffer(ctx, gated, "lost", []byte("x"), nil)
	require.Error(t, err, "a closed gate must refuse requests")

	gate.Open()
	resp, err := client.DownloadStream(ctx, gated, "kept", nil)
	require.NoError(t, err)
	got, err := io.ReadAll(resp.Body)
	require.NoError(t, resp.Body.Close())
	require.NoError(t, err)
	assert.Equal(t, "survives an outage", string(got))
}

func TestRefusedAddr(t *testing.T) {
	t.Parallel()
	addr := testenv.RefusedAddr(t)
	_, err := net.DialTimeout("tcp", addr, 10*time.Second)
	require.ErrorIs(t, err, syscall.ECONNREFUSED)
	_, err = net.Listen("tcp", addr)
	require.Error(t, err, "the port is held while the test runs")
}

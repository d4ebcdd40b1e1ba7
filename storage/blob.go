package storage

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/phiguard/phiguard/internal/reqbody"
)

// BlobStoreOptions configure NewBlobStore. Nil means safe defaults.
type BlobStoreOptions struct {
	Options

	// CPK, if set, is a customer-provided key passed to Azure on every
	// request: the service's own encryption at rest then uses it, on top of
	// (not instead of) this package's client-side encryption. Azure requires
	// HTTPS for it. Azurite ignores it.
	CPK *blob.CPKInfo
	// EncryptionScope, if set, names the account's encryption scope for the
	// service's encryption at rest. Azurite ignores it.
	EncryptionScope string
}

// NewBlobStore returns a Store over an Azure Blob Storage container. The
// caller's client decides credentials, retries and transport; the container
// must exist. kek wraps every object's content key.
func NewBlobStore(c *container.Client, kek KeyWrapper, opts *BlobStoreOptions) (*Store, error) {
	if c == nil {
		return nil, errors.New("storage: nil container client")
	}
	var o BlobStoreOptions
	if opts != nil {
		o = *opts
	}
	b := &blobBackend{c: c, cpk: o.CPK}
	if o.EncryptionScope != "" {
		b.scope = &blob.CPKScopeInfo{EncryptionScope: to.Ptr(o.EncryptionScope)}
	}
	return newStore(b, kek, &o.Options)
}

type blobBackend struct {
	c     *container.Client
	cpk   *blob.CPKInfo
	scope *blob.CPKScopeInfo
}

func (b *blobBackend) newUpload(_ context.Context, name string, _ map[string]string) (upload, error) {
	u := &blobUpload{b: b, bb: b.c.NewBlockBlobClient(name)}
	// A random prefix keeps the block IDs of two concurrent uploads to the
	// same name apart; uncommitted blocks belong to the name, not the upload.
	if _, err := rand.Read(u.prefix[:]); err != nil {
		return nil, err
	}
	return u, nil
}

type blobUpload struct {
	b      *blobBackend
	bb     *blockblob.Client
	prefix [8]byte
}

func (u *blobUpload) blockID(i int) string {
	var id [16]byte
	copy(id[:8], u.prefix[:])
	binary.BigEndian.PutUint64(id[8:], uint64(i)) //nolint:gosec // G115: i >= 0.
	return base64.StdEncoding.EncodeToString(id[:])
}

func (u *blobUpload) stage(ctx context.Context, index int, _ int64, data []byte) error {
	// data is a pooled buffer, reused once stage returns: take it back from
	// the transport first (see package reqbody).
	body := reqbody.New(data)
	_, err := u.bb.StageBlock(ctx, u.blockID(index), body,
		&blockblob.StageBlockOptions{CPKInfo: u.b.cpk, CPKScopeInfo: u.b.scope})
	body.Detach()
	if err != nil {
		return fmt.Errorf("stage block %d: %w", index, sanitize(err))
	}
	return nil
}

func (u *blobUpload) commit(ctx context.Context, blocks int, md map[string]string, noOverwrite bool) (time.Time, error) {
	ids := make([]string, blocks)
	for i := range ids {
		ids[i] = u.blockID(i)
	}
	opts := &blockblob.CommitBlockListOptions{
		Metadata:     toAzureMetadata(md),
		HTTPHeaders:  &blob.HTTPHeaders{BlobContentType: to.Ptr("application/octet-stream")},
		CPKInfo:      u.b.cpk,
		CPKScopeInfo: u.b.scope,
	}
	if noOverwrite {
		opts.AccessConditions = &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfNoneMatch: to.Ptr(azcore.ETagAny)}}
	}
	resp, err := u.bb.CommitBlockList(ctx, ids, opts)
	if err != nil {
		if bloberror.HasCode(err, bloberror.BlobAlreadyExists, bloberror.ConditionNotMet) {
			return time.Time{}, ErrExists
		}
		return time.Time{}, fmt.Errorf("commit: %w", sanitize(err))
	}
	var t time.Time
	if resp.LastModified != nil {
		t = *resp.LastModified
	}
	return t, nil
}

// abort leaves the staged blocks to Azure, which discards uncommitted
// blocks after a week; they are never visible as a blob.
func (u *blobUpload) abort() {}

func (b *blobBackend) open(ctx context.Context, name string) (*rawObject, error) {
	bc := b.c.NewBlobClient(name)
	resp, err := bc.DownloadStream(ctx, &blob.DownloadStreamOptions{CPKInfo: b.cpk, CPKScopeInfo: b.scope})
	if err != nil {
		return nil, mapBlobError(err)
	}
	var size int64
	if resp.ContentLength != nil {
		size = *resp.ContentLength
	}
	raw := &rawObject{
		// The retry reader resumes an interrupted download with If-Match on
		// the ETag, so the bytes all come from one version of the blob.
		body: resp.NewRetryReader(ctx, &blob.RetryReaderOptions{MaxRetries: 3}),
		size: size,
		md:   fromAzureMetadata(resp.Metadata),
	}
	if resp.LastModified != nil {
		raw.lastModified = *resp.LastModified
	}
	return raw, nil
}

func (b *blobBackend) properties(ctx context.Context, name string) (map[string]string, string, error) {
	resp, err := b.c.NewBlobClient(name).GetProperties(ctx, &blob.GetPropertiesOptions{CPKInfo: b.cpk})
	if err != nil {
		return nil, "", mapBlobError(err)
	}
	var etag string
	if resp.ETag != nil {
		etag = string(*resp.ETag)
	}
	return fromAzureMetadata(resp.Metadata), etag, nil
}

func (b *blobBackend) setMetadata(ctx context.Context, name string, md map[string]string, etag string) error {
	e := azcore.ETag(etag)
	_, err := b.c.NewBlobClient(name).SetMetadata(ctx, toAzureMetadata(md), &blob.SetMetadataOptions{
		CPKInfo:          b.cpk,
		CPKScopeInfo:     b.scope,
		AccessConditions: &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: &e}},
	})
	if bloberror.HasCode(err, bloberror.ConditionNotMet) {
		return ErrConflict
	}
	return mapBlobError(err)
}

func (b *blobBackend) remove(ctx context.Context, name string) error {
	_, err := b.c.NewBlobClient(name).Delete(ctx, &blob.DeleteOptions{DeleteSnapshots: to.Ptr(blob.DeleteSnapshotsOptionTypeInclude)})
	return mapBlobError(err)
}

func (b *blobBackend) check(ctx context.Context) error {
	_, err := b.c.GetProperties(ctx, nil)
	if err != nil {
		return fmt.Errorf("container: %w", sanitize(err))
	}
	return nil
}

func mapBlobError(err error) error {
	switch {
	case err == nil:
		return nil
	case bloberror.HasCode(err, bloberror.BlobNotFound):
		return ErrNotFound
	default:
		return sanitize(err)
	}
}

func toAzureMetadata(md map[string]string) map[string]*string {
	out := make(map[string]*string, len(md))
	for k, v := range md {
		out[k] = to.Ptr(v)
	}
	return out
}

// fromAzureMetadata lower-cases keys: the SDK returns them as canonical HTTP
// header names ("Encryptiondata"), while Azure treats them case-insensitively.
func fromAzureMetadata(md map[string]*string) map[string]string {
	out := make(map[string]string, len(md))
	for k, v := range md {
		if v != nil {
			out[strings.ToLower(k)] = *v
		}
	}
	return out
}

// sanitize hides request URLs and file paths (which contain object names) from an error's
// text while keeping the error chain for errors.Is and errors.As: a
// *azcore.ResponseError prints its status and error code only, a *url.Error
// its operation and cause.
func sanitize(err error) error {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return &quietError{msg: fmt.Sprintf("azure storage: HTTP %d %s", re.StatusCode, re.ErrorCode), err: err}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return &quietError{msg: fmt.Sprintf("%s request: %v", ue.Op, sanitize(ue.Err)), err: err}
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return &quietError{msg: fmt.Sprintf("%s: %v", pe.Op, pe.Err), err: err}
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return &quietError{msg: fmt.Sprintf("%s: %v", le.Op, le.Err), err: err}
	}
	return err
}

type quietError struct {
	msg string
	err error
}

func (e *quietError) Error() string { return e.msg }
func (e *quietError) Unwrap() error { return e.err }

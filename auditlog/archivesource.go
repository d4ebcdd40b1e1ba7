package auditlog

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/phiguard/phiguard/phimask"
)

// ErrBadName: a service or instance name is not usable in a blob name.
var ErrBadName = errors.New("auditlog: archive: bad service or instance name")

// namePart is what a service or instance name may look like: a DNS-label
// style name (Kubernetes pod names, Container Apps replica names), so that
// it is one path segment of a blob name and needs no escaping.
var namePart = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,126}[A-Za-z0-9])?$`)

// checkNamePart refuses a name that is not a plain path segment, or in which
// phimask finds something that looks like PHI (a phone number, an SSN...):
// blob names show up in listings, logs and metrics, and are not covered by
// the event pseudonymization. The name itself is never put in the error.
func checkNamePart(what, v string) error {
	if !namePart.MatchString(v) || strings.Contains(v, "..") {
		return fmt.Errorf("%w: %s must be 1-128 letters, digits, '.', '_' or '-', starting and ending with a letter or digit", ErrBadName, what)
	}
	if len(phimask.Detect(v)) > 0 {
		return fmt.Errorf("%w: %s looks like it holds PHI", ErrBadName, what)
	}
	return nil
}

// archivePrefix is the folder of one instance's trail in the container.
func archivePrefix(service, instance string) string { return service + "/" + instance + "/" }

// ArchiveTrail names one instance's trail in an archive container.
type ArchiveTrail struct {
	Service  string
	Instance string
}

func (a ArchiveTrail) String() string { return a.Service + "/" + a.Instance }

// ArchiveTrails lists the trails in an archive container, sorted: every
// instance of service, or of every service when service is empty. Blobs
// whose names are not those of a trail file are ignored here; VerifyArchive
// reports them.
func ArchiveTrails(ctx context.Context, c *container.Client, service string) ([]ArchiveTrail, error) {
	trails, _, err := listArchive(ctx, c, service)
	return trails, err
}

// listArchive lists the trails under service (all when empty) and counts
// the blobs there that are not trail files.
func listArchive(ctx context.Context, c *container.Client, service string) ([]ArchiveTrail, int, error) {
	var prefix *string
	if service != "" {
		if err := checkNamePart("service", service); err != nil {
			return nil, 0, err
		}
		p := service + "/"
		prefix = &p
	}
	seen := map[ArchiveTrail]bool{}
	foreign := 0
	pager := c.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: prefix})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, 0, fmt.Errorf("auditlog: archive: list trails: %w", cleanErr(err))
		}
		for _, b := range page.Segment.BlobItems {
			if b.Name == nil {
				continue
			}
			parts := strings.Split(*b.Name, "/")
			if len(parts) != 3 || !segmentName.MatchString(parts[2]) ||
				checkNamePart("service", parts[0]) != nil || checkNamePart("instance", parts[1]) != nil {
				foreign++
				continue
			}
			seen[ArchiveTrail{Service: parts[0], Instance: parts[1]}] = true
		}
	}
	out := make([]ArchiveTrail, 0, len(seen))
	for t := range seen {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b ArchiveTrail) int { return strings.Compare(a.String(), b.String()) })
	return out, foreign, nil
}

// ArchiveSource returns the Source of one instance's trail in an archive
// container written by ArchiveSink: VerifySource checks it exactly as it
// checks a folder. It only reads (list and get blob). It is safe for
// concurrent use; a trail still being written verifies as of the moment
// each segment's checkpoints were first looked at (checkpoints are appended
// only after the events they cover, so the two stay consistent).
func ArchiveSource(c *container.Client, service, instance string) (Source, error) {
	if c == nil {
		return nil, errors.New("auditlog: archive: a container client is required")
	}
	if err := checkNamePart("service", service); err != nil {
		return nil, err
	}
	if err := checkNamePart("instance", instance); err != nil {
		return nil, err
	}
	return &archiveSource{c: c, prefix: archivePrefix(service, instance), ckLen: map[int64]int64{}}, nil
}

type archiveSource struct {
	c      *container.Client
	prefix string

	mu    sync.Mutex
	ckLen map[int64]int64 // checkpoints blob length seen before reading the events
}

func (s *archiveSource) eventsBlob(n int64) string      { return s.prefix + eventsFile(n) }
func (s *archiveSource) checkpointsBlob(n int64) string { return s.prefix + checkpointsFile(n) }

func (s *archiveSource) Segments(ctx context.Context) ([]int64, error) {
	seen := map[int64]bool{}
	pager := s.c.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &s.prefix})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("auditlog: archive: list segments: %w", cleanErr(err))
		}
		for _, b := range page.Segment.BlobItems {
			if b.Name != nil {
				addSegment(seen, strings.TrimPrefix(*b.Name, s.prefix))
			}
		}
	}
	return sortedSegments(seen), nil
}

// OpenEvents first notes the length of the segment's checkpoints, so that
// OpenCheckpoints reads no checkpoint newer than the events read here.
func (s *archiveSource) OpenEvents(ctx context.Context, n int64) (io.ReadCloser, error) {
	props, err := s.c.NewBlobClient(s.checkpointsBlob(n)).GetProperties(ctx, nil)
	switch {
	case err == nil && props.ContentLength != nil:
		s.mu.Lock()
		s.ckLen[n] = *props.ContentLength
		s.mu.Unlock()
	case err != nil && !bloberror.HasCode(err, bloberror.BlobNotFound):
		return nil, fmt.Errorf("auditlog: archive: %w", cleanErr(err))
	}
	return s.open(ctx, s.eventsBlob(n), -1)
}

func (s *archiveSource) OpenCheckpoints(ctx context.Context, n int64) (io.ReadCloser, error) {
	s.mu.Lock()
	limit, ok := s.ckLen[n]
	s.mu.Unlock()
	if !ok {
		limit = -1
	}
	return s.open(ctx, s.checkpointsBlob(n), limit)
}

// open streams a blob (its first limit bytes when limit >= 0); a missing
// blob is an error wrapping fs.ErrNotExist.
func (s *archiveSource) open(ctx context.Context, name string, limit int64) (io.ReadCloser, error) {
	if limit == 0 {
		return io.NopCloser(strings.NewReader("")), nil
	}
	o := &blob.DownloadStreamOptions{}
	if limit > 0 {
		o.Range = blob.HTTPRange{Offset: 0, Count: limit}
	}
	resp, err := s.c.NewBlobClient(name).DownloadStream(ctx, o)
	if err != nil {
		if bloberror.HasCode(err, bloberror.BlobNotFound) {
			return nil, fmt.Errorf("auditlog: archive: %s: %w", name, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("auditlog: archive: %w", cleanErr(err))
	}
	// The retry reader resumes a long download cut by the network.
	return resp.NewRetryReader(ctx, &blob.RetryReaderOptions{MaxRetries: 3}), nil
}

// ArchiveReport is the verification of one instance's trail.
type ArchiveReport struct {
	Trail  ArchiveTrail
	Report *Report // nil when the trail could not be read
	Err    error   // nil when the trail verifies
}

// ArchiveVerifyOptions configure VerifyArchive. Nil means the defaults.
type ArchiveVerifyOptions struct {
	// VerifyOptions apply to every trail. Its Trusted field must be nil: a
	// checkpoint belongs to one trail (see TrustedCheckpoints).
	VerifyOptions
	// TrustedCheckpoints holds, per trail, the latest checkpoint seen
	// outside the archive (shipped to Azure Monitor, kept by the auditor):
	// that trail must contain and extend it (else ErrRollback or
	// ErrTampered), and a trail named here that is missing from the archive
	// is reported with ErrRollback.
	TrustedCheckpoints map[ArchiveTrail][]byte
	// Expect lists trails that must be in the archive, e.g. every replica
	// that ran. Deleting all blobs of a trail leaves nothing to verify, so
	// only a list kept elsewhere reveals it: a missing one is reported with
	// ErrRollback.
	Expect []ArchiveTrail
}

// VerifyArchive verifies every trail in the container (of service, or of
// every service when empty), each on its own (see VerifySource), and
// returns one report per trail found. The error joins every problem:
// a trail that does not verify (wrapping ErrTampered or ErrRollback), a
// trail named in opts.Expect or opts.TrustedCheckpoints that is missing
// (ErrRollback), and blobs under the service that are not trail files
// (ErrTampered: renaming a trail's blobs must not hide it).
func VerifyArchive(ctx context.Context, c *container.Client, service string, pub ed25519.PublicKey, opts *ArchiveVerifyOptions) ([]ArchiveReport, error) {
	var o ArchiveVerifyOptions
	if opts != nil {
		o = *opts
	}
	if o.Trusted != nil {
		return nil, errors.New("auditlog: archive: VerifyOptions.Trusted names no trail: use TrustedCheckpoints")
	}
	trails, foreign, err := listArchive(ctx, c, service)
	if err != nil {
		return nil, err
	}
	var (
		out  []ArchiveReport
		errs []error
	)
	found := map[ArchiveTrail]bool{}
	for _, t := range trails {
		found[t] = true
		src, err := ArchiveSource(c, t.Service, t.Instance)
		if err != nil {
			return out, err
		}
		vo := o.VerifyOptions
		vo.Trusted = o.TrustedCheckpoints[t]
		r, err := VerifySource(ctx, src, pub, &vo)
		out = append(out, ArchiveReport{Trail: t, Report: r, Err: err})
		if err != nil {
			errs = append(errs, fmt.Errorf("trail %s: %w", t, err))
		}
	}
	missing := map[ArchiveTrail]bool{}
	for _, t := range o.Expect {
		if !found[t] {
			missing[t] = true
		}
	}
	for t := range o.TrustedCheckpoints {
		if !found[t] {
			missing[t] = true
		}
	}
	for _, t := range slices.SortedFunc(maps.Keys(missing), func(a, b ArchiveTrail) int { return strings.Compare(a.String(), b.String()) }) {
		errs = append(errs, fmt.Errorf("trail %s is missing: %w", t, ErrRollback))
	}
	if foreign > 0 {
		errs = append(errs, fmt.Errorf("%d blobs are not trail files: %w", foreign, ErrTampered))
	}
	if len(errs) > 0 {
		return out, fmt.Errorf("auditlog: archive: %w", errors.Join(errs...))
	}
	return out, nil
}

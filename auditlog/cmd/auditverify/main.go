// Command auditverify checks an audit trail written by auditlog's file sink
// (a folder) or archive sink (an Azure Blob Storage container).
//
//	auditverify -pub KEY [-trusted FILE] [-sealed] [-prove EVENT_ID] DIR
//	auditverify -pub KEY [-service S [-instance I]] [flags] https://ACCOUNT.blob.core.windows.net/CONTAINER
//	auditverify -pub KEY -container CONTAINER [-connection-string CS] [-service S [-instance I]] [flags]
//
// KEY is the checkpoint signing key's public half: base64 of the 32-byte
// Ed25519 key, or @FILE holding that text or a PEM "PUBLIC KEY" block. A
// container URL is read with DefaultAzureCredential (environment, workload
// or managed identity, Azure CLI); with -container the connection string
// comes from -connection-string or AZURE_STORAGE_CONNECTION_STRING (prefer
// the environment: command lines are visible to other users). Without
// -instance every trail of the container (or of -service) is verified;
// -trusted, -prove and -checkpoint-out name one trail and need -instance.
// The exit status is 0 when every trail verifies, 1 when one does not
// (tampering, rollback), 2 on a usage or read error. It prints a summary,
// the problems found, and with -prove the inclusion proof of one event as
// JSON. It reads the trail only and prints no event content.
package main

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/phiguard/phiguard/auditlog"
)

// connEnv names the environment variable holding a storage connection string.
const connEnv = "AZURE_STORAGE_CONNECTION_STRING"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("auditverify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pubFlag := fs.String("pub", "", "checkpoint public key: base64 Ed25519 key, or @FILE (base64 text or PEM)")
	keyName := fs.String("key-name", auditlog.DefaultKeyName, "signer name in the checkpoints")
	origin := fs.String("origin", "", "expected checkpoint origin (any if empty)")
	trusted := fs.String("trusted", "", "FILE holding the latest checkpoint seen outside the trail (detects rollback)")
	sealed := fs.Bool("sealed", false, "require every event to be covered by a checkpoint (trail closed cleanly)")
	prove := fs.String("prove", "", "event ID: print its inclusion proof against the latest checkpoint")
	checkpointOut := fs.String("checkpoint-out", "", "FILE to write the latest checkpoint to (keep it to detect a later rollback)")
	containerName := fs.String("container", "", "archive container name, reached with the connection string")
	connFlag := fs.String("connection-string", "", "storage connection string (default: $"+connEnv+")")
	service := fs.String("service", "", "archive: verify only this service's trails")
	instance := fs.String("instance", "", "archive: verify only this instance's trail (needs -service)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	archive := *containerName != "" || (fs.NArg() == 1 && (strings.HasPrefix(fs.Arg(0), "https://") || strings.HasPrefix(fs.Arg(0), "http://")))
	usage := func() int {
		fmt.Fprintln(stderr, "usage: auditverify -pub KEY [flags] DIR | CONTAINER_URL | -container NAME")
		fs.PrintDefaults()
		return 2
	}
	switch {
	case *pubFlag == "":
		return usage()
	case *containerName != "" && fs.NArg() != 0, *containerName == "" && fs.NArg() != 1:
		return usage()
	case !archive && (*service != "" || *instance != ""):
		fmt.Fprintln(stderr, "auditverify: -service and -instance apply to an archive")
		return 2
	case *instance != "" && *service == "":
		fmt.Fprintln(stderr, "auditverify: -instance needs -service")
		return 2
	case archive && *instance == "" && (*trusted != "" || *prove != "" || *checkpointOut != ""):
		fmt.Fprintln(stderr, "auditverify: -trusted, -prove and -checkpoint-out name one trail: add -service and -instance")
		return 2
	}
	pub, err := parsePub(*pubFlag)
	if err != nil {
		fmt.Fprintln(stderr, "auditverify:", err)
		return 2
	}
	opts := &auditlog.VerifyOptions{KeyName: *keyName, Origin: *origin, RequireSealed: *sealed}
	if *trusted != "" {
		if opts.Trusted, err = os.ReadFile(*trusted); err != nil {
			fmt.Fprintln(stderr, "auditverify:", err)
			return 2
		}
	}
	if *prove != "" {
		opts.FindIDs = []string{*prove}
	}
	var r *auditlog.Report
	if archive {
		c, err := openContainer(fs.Arg(0), *containerName, *connFlag)
		if err != nil {
			fmt.Fprintln(stderr, "auditverify:", err)
			return 2
		}
		ctx := context.Background()
		if *instance == "" {
			return verifyAll(ctx, c, *service, pub, opts, stdout, stderr)
		}
		src, err := auditlog.ArchiveSource(c, *service, *instance)
		if err != nil {
			fmt.Fprintln(stderr, "auditverify:", err)
			return 2
		}
		r, err = auditlog.VerifySource(ctx, src, pub, opts)
		return finish(r, err, *checkpointOut, *prove, stdout, stderr)
	}
	r, err = auditlog.Verify(fs.Arg(0), pub, opts)
	return finish(r, err, *checkpointOut, *prove, stdout, stderr)
}

// openContainer returns the archive container: from its URL with
// DefaultAzureCredential, or by name with a connection string.
func openContainer(rawURL, name, conn string) (*container.Client, error) {
	if name == "" {
		cred, err := azidentity.NewDefaultAzureCredential(nil)
		if err != nil {
			return nil, fmt.Errorf("credential: %w", err)
		}
		return container.NewClient(rawURL, cred, nil)
	}
	if conn == "" {
		conn = os.Getenv(connEnv)
	}
	if conn == "" {
		return nil, errors.New("-container needs -connection-string or " + connEnv)
	}
	c, err := container.NewClientFromConnectionString(conn, name, nil)
	if err != nil {
		// The SDK's message may quote the connection string: do not print it.
		return nil, errors.New("the connection string cannot be parsed")
	}
	return c, nil
}

// verifyAll verifies every trail of the container (or of service).
func verifyAll(ctx context.Context, c *container.Client, service string, pub ed25519.PublicKey, opts *auditlog.VerifyOptions, stdout, stderr io.Writer) int {
	reports, err := auditlog.VerifyArchive(ctx, c, service, pub, &auditlog.ArchiveVerifyOptions{VerifyOptions: *opts})
	if len(reports) == 0 && err != nil {
		fmt.Fprintln(stderr, "auditverify:", err)
		return 2
	}
	fmt.Fprintf(stdout, "trails: %d\n", len(reports))
	code := 0
	for _, ar := range reports {
		fmt.Fprintf(stdout, "\ntrail: %s\n", ar.Trail)
		if ar.Report == nil {
			fmt.Fprintln(stderr, "auditverify:", ar.Err)
			code = 2
			continue
		}
		summary(ar.Report, stdout)
		switch {
		case ar.Err == nil:
			fmt.Fprintln(stdout, "RESULT: OK")
		case errors.Is(ar.Err, auditlog.ErrTampered):
			fmt.Fprintln(stdout, "RESULT: FAIL")
			code = max(code, 1)
		default:
			fmt.Fprintln(stderr, "auditverify:", ar.Err)
			code = 2
		}
	}
	return code
}

func summary(r *auditlog.Report, stdout io.Writer) {
	fmt.Fprintf(stdout, "segments: %d\nevents: %d\ncheckpoints: %d\nsealed: %v\nunsigned tail: %d\ntorn last line: %v\n",
		r.Segments, r.Events, r.Checkpoints, r.Sealed, r.Unsealed, r.TornTail)
	for _, p := range r.Problems {
		fmt.Fprintln(stdout, "PROBLEM:", p)
	}
}

// finish prints one trail's result and does -checkpoint-out and -prove.
func finish(r *auditlog.Report, err error, checkpointOut, prove string, stdout, stderr io.Writer) int {
	if r == nil {
		fmt.Fprintln(stderr, "auditverify:", err)
		return 2
	}
	summary(r, stdout)
	if err != nil {
		if !errors.Is(err, auditlog.ErrTampered) {
			fmt.Fprintln(stderr, "auditverify:", err)
			return 2
		}
		fmt.Fprintln(stdout, "RESULT: FAIL")
		return 1
	}
	if checkpointOut != "" && r.Checkpoint != nil {
		if err := os.WriteFile(checkpointOut, r.Checkpoint, 0o600); err != nil {
			fmt.Fprintln(stderr, "auditverify:", err)
			return 2
		}
	}
	if prove != "" {
		idx, ok := r.Found[prove]
		if !ok {
			fmt.Fprintln(stderr, "auditverify: event not found")
			return 2
		}
		p, err := r.ProveInclusion(idx)
		if err != nil {
			fmt.Fprintln(stderr, "auditverify:", err)
			return 2
		}
		out, _ := json.MarshalIndent(struct {
			Proof      *auditlog.InclusionProof `json:"proof"`
			Checkpoint string                   `json:"checkpoint"`
		}{p, string(r.Checkpoint)}, "", "  ")
		fmt.Fprintln(stdout, string(out))
	}
	fmt.Fprintln(stdout, "RESULT: OK")
	return 0
}

func parsePub(v string) (ed25519.PublicKey, error) {
	if path, ok := strings.CutPrefix(v, "@"); ok {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		if blk, _ := pem.Decode(b); blk != nil {
			k, err := x509.ParsePKIXPublicKey(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("public key: %w", err)
			}
			pub, ok := k.(ed25519.PublicKey)
			if !ok {
				return nil, errors.New("public key is not Ed25519")
			}
			return pub, nil
		}
		v = string(b)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, errors.New("public key: want base64 of 32 bytes")
	}
	return ed25519.PublicKey(raw), nil
}

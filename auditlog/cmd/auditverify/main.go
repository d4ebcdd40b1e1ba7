// Command auditverify checks an audit trail written by auditlog's file sink.
//
//	auditverify -pub KEY [-trusted FILE] [-sealed] [-prove EVENT_ID] DIR
//
// KEY is the checkpoint signing key's public half: base64 of the 32-byte
// Ed25519 key, or @FILE holding that text or a PEM "PUBLIC KEY" block. The
// exit status is 0 when the trail verifies, 1 when it does not (tampering,
// rollback), 2 on a usage or read error. It prints a summary, the problems
// found, and with -prove the inclusion proof of one event as JSON. It reads
// the trail only and prints no event content.
package main

import (
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

	"github.com/phiguard/phiguard/auditlog"
)

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
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 || *pubFlag == "" {
		fmt.Fprintln(stderr, "usage: auditverify -pub KEY [flags] DIR")
		fs.PrintDefaults()
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
	r, err := auditlog.Verify(fs.Arg(0), pub, opts)
	if r == nil {
		fmt.Fprintln(stderr, "auditverify:", err)
		return 2
	}
	fmt.Fprintf(stdout, "segments: %d\nevents: %d\ncheckpoints: %d\nsealed: %v\nunsigned tail: %d\ntorn last line: %v\n",
		r.Segments, r.Events, r.Checkpoints, r.Sealed, r.Unsealed, r.TornTail)
	for _, p := range r.Problems {
		fmt.Fprintln(stdout, "PROBLEM:", p)
	}
	if err != nil {
		if !errors.Is(err, auditlog.ErrTampered) {
			fmt.Fprintln(stderr, "auditverify:", err)
			return 2
		}
		fmt.Fprintln(stdout, "RESULT: FAIL")
		return 1
	}
	if *checkpointOut != "" && r.Checkpoint != nil {
		if err := os.WriteFile(*checkpointOut, r.Checkpoint, 0o600); err != nil {
			fmt.Fprintln(stderr, "auditverify:", err)
			return 2
		}
	}
	if *prove != "" {
		idx, ok := r.Found[*prove]
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

// Package storage is an encrypted object store for clinical documents,
// uploads and generated files: every object is encrypted on the client,
// before it leaves the service, with keys the storage account never sees.
//
// The format is Azure Storage client-side encryption v2, as the Python,
// .NET and Java SDKs write it, so an object written by a Go service reads in
// those SDKs and the other way round:
//
//   - a fresh 256-bit content key per object, AES-256-GCM over 4 MiB regions,
//     each stored as nonce(12) || ciphertext || tag(16), nonces a 12-byte
//     big-endian counter from 0;
//   - the content key, preceded by the protocol "2.0" zero-padded to 8 bytes,
//     wrapped by a key-encryption key (a KeyWrapper: NewLocalKey for AES key
//     wrap, NewKeyVaultKey for RSA-OAEP-256 in Azure Key Vault) and recorded
//     in the "encryptiondata" metadata;
//   - plus, in metadata of phiguard's own that other SDKs ignore, a MAC over
//     the plaintext length under a key derived from the content key, which
//     detects an object cut at a region boundary (v2 alone does not).
//
// Two back ends share one API (as gocloud.dev/blob does): NewBlobStore over
// an Azure Blob Storage container, and NewDirStore over a local folder for
// development and for encrypted volumes an operator mounts on purpose. Both
// store the same content bytes and the same encryptiondata JSON.
//
// Put streams: memory stays within about BlockSize x Concurrency whatever
// the size; blocks are staged in parallel and committed together with the
// metadata, so a failed or cancelled Put leaves nothing visible. Get
// authenticates each region before releasing any of its bytes. Rewrap
// re-wraps an object's content key for key rotation without touching the
// content. Check suits a readiness probe.
//
// Object names are visible to anyone who can list the container, so Put
// refuses a name in which phimask finds PHI, and an empty name gets an
// opaque random one. This is why storage imports phimask.
//
// A Store never logs. Its errors never contain plaintext, keys, or object
// names (request URLs and file paths are stripped from back-end errors,
// which stay reachable with errors.As).
//
// See docs/storage.md for the threat model, configuration, and what the
// package does not do.
package storage

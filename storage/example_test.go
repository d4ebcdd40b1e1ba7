package storage_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/phiguard/phiguard/storage"
)

// A folder store for development: Put a document under a random name, read
// it back.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "phiguard-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// In production the key-encryption key comes from Key Vault
	// (NewKeyVaultKey) or a secret store, never from code.
	kekBytes := make([]byte, 32)
	_, _ = rand.Read(kekBytes)
	kek, err := storage.NewLocalKey("dev-kek-1", kekBytes)
	if err != nil {
		log.Fatal(err)
	}
	store, err := storage.NewDirStore(filepath.Join(dir, "objects"), kek, nil)
	if err != nil {
		log.Fatal(err)
	}

	obj, err := store.Put(ctx, "", strings.NewReader("discharge summary ..."), nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("name length:", len(obj.Name), "size:", obj.Size)

	rc, _, err := store.Get(ctx, obj.Name)
	if err != nil {
		log.Fatal(err)
	}
	defer rc.Close()
	text, err := io.ReadAll(rc)
	if err != nil {
		log.Fatal(err) // tampering or damage: nothing unauthenticated was returned
	}
	fmt.Println(string(text))
	// Output:
	// name length: 32 size: 21
	// discharge summary ...
}

// Key rotation: a store writing with the new key reads objects of the old
// one through DecryptionKeys, and Rewrap moves each object to the new key
// without rewriting its content.
func ExampleStore_Rewrap() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "phiguard-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	newKey := func(kid string) *storage.LocalKey {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		k, err := storage.NewLocalKey(kid, b)
		if err != nil {
			log.Fatal(err)
		}
		return k
	}
	oldKEK, newKEK := newKey("kek-2025"), newKey("kek-2026")

	before, _ := storage.NewDirStore(dir, oldKEK, nil)
	if _, err := before.Put(ctx, "reports/r1", strings.NewReader("report"), nil); err != nil {
		log.Fatal(err)
	}

	during, _ := storage.NewDirStore(dir, newKEK, &storage.DirStoreOptions{
		Options: storage.Options{DecryptionKeys: []storage.KeyWrapper{oldKEK}},
	})
	if err := during.Rewrap(ctx, "reports/r1", newKEK); err != nil {
		log.Fatal(err)
	}

	after, _ := storage.NewDirStore(dir, newKEK, nil)
	rc, obj, err := after.Get(ctx, "reports/r1")
	if err != nil {
		log.Fatal(err)
	}
	defer rc.Close()
	fmt.Println(obj.KeyID)
	// Output: kek-2026
}

// Names are visible to anyone who can list the container: a name with PHI
// is refused, and the error says which kind without repeating the value.
func ExampleCheckName() {
	err := storage.CheckName("intake/ssn-123-45-6789.pdf")
	fmt.Println(errors.Is(err, storage.ErrNameRefused))
	fmt.Println(storage.CheckName("intake/7f3a9c.pdf"))
	// Output:
	// true
	// <nil>
}

// Production: objects in a blob container, content keys wrapped by an RSA
// key in Key Vault, credentials from the workload identity.
func ExampleNewBlobStore() {
	ctx := context.Background()
	cred, err := azidentity.NewDefaultAzureCredential(nil)
	if err != nil {
		log.Fatal(err)
	}
	keys, err := azkeys.NewClient("https://contoso-phi.vault.azure.net", cred, nil)
	if err != nil {
		log.Fatal(err)
	}
	kek, err := storage.NewKeyVaultKey(keys, "documents-kek", "") // "" = current version
	if err != nil {
		log.Fatal(err)
	}
	blobs, err := container.NewClient("https://contosophi.blob.core.windows.net/documents", cred, nil)
	if err != nil {
		log.Fatal(err)
	}
	store, err := storage.NewBlobStore(blobs, kek, &storage.BlobStoreOptions{
		Options:         storage.Options{BlockSize: 8 << 20, Concurrency: 8},
		EncryptionScope: "phi-scope", // optional: the service's encryption at rest
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := store.Check(ctx); err != nil {
		log.Fatal(err)
	}
	f, err := os.Open("scan.pdf")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	obj, err := store.Put(ctx, "", f, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(obj.Name)
}

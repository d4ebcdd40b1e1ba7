package auditlog_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log"
	"os"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/phiguard/phiguard/auditlog"
)

// ExampleNewArchiveSink records to the immutable archive container with
// the pod's managed identity: Record returns once the event is in the
// append blob. (Not run: it needs an Azure Storage account.)
func ExampleNewArchiveSink() {
	cred, err := azidentity.NewDefaultAzureCredential(nil)
	if err != nil {
		log.Fatal(err)
	}
	// e.g. https://stphiguard.blob.core.windows.net/audit-archive
	archive, err := container.NewClient(os.Getenv("AUDIT_ARCHIVE_URL"), cred, nil)
	if err != nil {
		log.Fatal(err)
	}
	var signingKey ed25519.PrivateKey // from Key Vault or a mounted secret
	var pseudonymKey []byte           // the phimask log handler's key
	sink, err := auditlog.NewArchiveSink(archive, &auditlog.ArchiveOptions{
		SigningKey: signingKey,
		Service:    "records-api",
		Instance:   os.Getenv("POD_NAME"), // one trail per replica
		SpoolDir:   "/var/lib/phiguard/audit-spool",
	})
	if err != nil {
		log.Fatal(err)
	}
	logger, err := auditlog.New(&auditlog.Options{
		PseudonymKey: pseudonymKey,
		Observer:     auditlog.Observer{Service: "records-api", Instance: os.Getenv("POD_NAME")},
	}, sink)
	if err != nil {
		log.Fatal(err)
	}
	defer logger.Close()
	// Gate readiness on logger.Check: it fails while the archive is away.
}

// ExampleVerifyArchive verifies every replica's trail straight from the
// archive. (Not run: it needs an Azure Storage account.)
func ExampleVerifyArchive() {
	cred, err := azidentity.NewDefaultAzureCredential(nil)
	if err != nil {
		log.Fatal(err)
	}
	archive, err := container.NewClient(os.Getenv("AUDIT_ARCHIVE_URL"), cred, nil)
	if err != nil {
		log.Fatal(err)
	}
	var pub ed25519.PublicKey // the checkpoint key's public half
	reports, err := auditlog.VerifyArchive(context.Background(), archive, "records-api", pub, &auditlog.ArchiveVerifyOptions{})
	for _, r := range reports {
		fmt.Println(r.Trail, r.Err == nil)
	}
	if err != nil {
		log.Fatal(err)
	}
}

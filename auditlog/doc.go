// Package auditlog records who did what to protected health information as a
// tamper-evident audit trail that holds no PHI, loses no acknowledged event,
// and answers auditors' questions (HIPAA 164.312(b) audit controls and
// 164.312(c) integrity).
//
// # Recording
//
// A Logger takes Events (mappable to FHIR R4 AuditEvent, see Event.FHIR) and
// writes them to its Sinks:
//
//   - FileSink: the trail of record, in segment files of JSON Lines with
//     Ed25519-signed checkpoints over a Merkle tree of every event line
//     (golang.org/x/mod/sumdb/tlog, RFC 6962 hashing; signed notes from
//     golang.org/x/mod/sumdb/note). Sync mode returns from Record once the
//     event is fsynced, concurrent callers sharing one fsync; Async mode
//     queues in a bounded buffer.
//   - ArchiveSink: the same trail in append blobs of an Azure Blob Storage
//     container under a locked time-based retention (WORM) policy, one
//     trail per replica (SERVICE/INSTANCE/audit-NNNNNNNN.jsonl and its
//     .checkpoints.jsonl), so the trail outlives the pod. Sync mode returns
//     from Record once the event is in the append blob, concurrent callers
//     sharing one Append Block; every append names its expected position,
//     so a retry can neither duplicate nor reorder. During an outage appends
//     go to a bounded local spool (drained in order, also after a restart)
//     and Check reports not ready.
//   - WriterSink: JSON lines to stdout for container log collection.
//   - IngestionSink: Azure Monitor Logs Ingestion API, batched under the
//     1 MB call limit, gzip, retried, spooled on disk during an outage.
//
// Record pseudonymizes entity identifiers and the client IP with
// phimask.Tokenize under Options.PseudonymKey (the same key as the service's
// log handler, so an auditor holding it can match a log line to an event)
// and scrubs free text with phimask.Redact. New fails without a key of at
// least 32 bytes: there is no per-process random key, because tokens nobody
// can reproduce would make the trail useless for an investigation.
//
// Record fails closed by default: if a sink cannot take the event, the
// caller gets the error and should refuse the PHI request. Options.FailOpen
// only counts failures.
//
// # Verifying
//
// Verify (and the auditverify command) recompute the tree and check every
// checkpoint: a modified, deleted, inserted, reordered or forged event, a
// truncated or missing segment, a deleted or altered checkpoint are all
// reported as ErrTampered. Given a checkpoint kept elsewhere
// (FileOptions.OnCheckpoint ships each one out), Verify also detects a
// rollback of the whole trail (ErrRollback). Report.ProveInclusion and
// Report.ProveConsistency give proofs that CheckInclusion and
// CheckConsistency verify with the public key alone. VerifySource takes any
// Source, so a trail kept elsewhere than a folder verifies the same way:
// ArchiveSource reads one replica's trail from the archive, ArchiveTrails
// lists them, and VerifyArchive verifies them all.
//
// # Reporting
//
// Reporter queries the audit table in Log Analytics through an
// azquery.LogsClient: one patient's accesses, one user's activity, failures
// and denials, accesses outside an allowed purpose, as typed rows. Queries
// are built with KQL, whose values are always literals (KQLLiteral) and
// whose names come from an allow-list, because Log Analytics takes no query
// parameters.
//
// # HTTP
//
// Middleware records one event per request after the response, with the
// status mapped to the outcome and a Describe function of the service
// naming actor, entity and action.
//
// Dependencies beyond the standard library: phimask (tokens and redaction,
// the reason for this package-to-package import), golang.org/x/mod/sumdb,
// and the azlogs, azquery and azblob modules of the Azure SDK for Go.
package auditlog

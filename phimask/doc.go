// Package phimask keeps protected health information (PHI) out of logs.
//
// A service wraps its slog.Handler once:
//
//	logger := slog.New(phimask.NewHandler(slog.NewJSONHandler(os.Stdout, nil), nil))
//
// and every record is cleaned before the next handler sees it:
//
//   - values under PHI keys ("ssn", "patientName", "date_of_birth",
//     "homePhone", ...; case and separators do not matter) are replaced
//     whole, whatever their type;
//   - the message and every other string are scanned, and only the PHI
//     inside them is replaced: "admitted patient SSN 123-45-6789 to ward 4"
//     becomes "admitted patient SSN [REDACTED:SSN] to ward 4";
//   - groups, WithAttrs, WithGroup, LogValuers, errors, Stringers, byte
//     slices, structs (exported fields only; `phi:"kind"` tags), maps,
//     slices and pointers are all followed, to a bounded depth;
//   - anything that cannot be processed is replaced, never passed raw.
//
// The detectors validate rather than just match: SSN area/group/serial
// rules, Luhn for payment cards and NPIs, the DEA and VIN check digits,
// IBAN mod-97, the CMS MBI format, calendar ranges for dates. Identifiers
// without a checksum (medical record, account, member, policy, license,
// device numbers) and names are found through the words that introduce
// them ("MRN:", "member id", "Dr.", "patient", "spoke with", "his wife").
// Unicode dashes, spaces, full-width digits and zero-width characters
// inside a value do not hide it. UUIDs, hex digests, trace and span ids,
// versions, durations, byte counts, status codes, ports, RFC 3339 event
// timestamps and Go type names are left alone.
//
// Replacements read "[REDACTED:KIND]". With Options.Key set they are keyed
// tokens "[KIND:hex]" (see Tokenize), so one patient can be followed across
// records and services without the value being readable. Options.SafeHarbor
// applies the HIPAA Safe Harbor transforms to dates, ZIP codes and ages.
// Handler.Stats reports what was replaced, by kind and by key.
//
// Detect and Redact expose the free-text scanner; RedactURL cleans request
// URLs. Everything in this package is safe for concurrent use, and this
// package imports nothing outside the standard library.
//
// phimask lowers the risk of PHI in logs; it does not remove the need to
// avoid logging PHI. Names and other free-form values that appear in free
// text without an introducing word cannot be told from ordinary words and
// are not detected: log them under a PHI key. See docs/phimask.md.
package phimask

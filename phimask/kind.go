package phimask

// Kind names a category of protected health information. Its value is the
// upper-case label used in replacements such as "[REDACTED:SSN]" and in
// tokens such as "[SSN:1f0c9a2e5b7d4c31]".
type Kind string

// The kinds of PHI phimask knows. KindID is a generic opaque identifier, used
// to pseudonymize values such as patient IDs that have no more specific kind.
const (
	KindName       Kind = "NAME"
	KindSSN        Kind = "SSN"
	KindITIN       Kind = "ITIN"
	KindNPI        Kind = "NPI"
	KindDEA        Kind = "DEA"
	KindMBI        Kind = "MBI"
	KindCreditCard Kind = "CREDIT_CARD"
	KindIBAN       Kind = "IBAN"
	KindPhone      Kind = "PHONE"
	KindFax        Kind = "FAX"
	KindEmail      Kind = "EMAIL"
	KindIP         Kind = "IP"
	KindURL        Kind = "URL"
	KindDate       Kind = "DATE"
	KindZIP        Kind = "ZIP"
	KindAddress    Kind = "ADDRESS"
	KindAge        Kind = "AGE"
	KindMRN        Kind = "MRN"
	KindAccount    Kind = "ACCOUNT"
	KindMemberID   Kind = "MEMBER_ID"
	KindPolicy     Kind = "POLICY"
	KindLicense    Kind = "LICENSE"
	KindVIN        Kind = "VIN"
	KindDevice     Kind = "DEVICE"
	KindID         Kind = "ID"
)

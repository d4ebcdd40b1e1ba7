package phimask

import (
	"hash/maphash"
	"strings"
	"sync/atomic"
)

// keyRule is what a normalized key name means.
type keyRule struct {
	k     kid
	exact bool // only the whole key matches ("name"), not a suffix ("hostName")
}

// builtinKeys maps normalized attribute names (lower case, letters and
// digits only) to the kind of their value. Entries marked exact match only
// the whole key; the others also match as the last words of a longer key
// ("homePhone", "patient_email", "emergencyContactPhoneNumber").
// Read-only.
var builtinKeys = func() map[string]keyRule {
	m := map[string]keyRule{}
	add := func(k kid, exact bool, names ...string) {
		for _, n := range names {
			m[n] = keyRule{k: k, exact: exact}
		}
	}
	add(kName, true, "name")
	add(kName, false, "patient", "patients", "person", "guardian", "relative", "spouse", "nextofkin")
	add(kName, false, "firstname", "lastname", "middlename", "fullname", "givenname", "familyname", "surname",
		"maidenname", "mothersmaidenname", "patientname", "username", "displayname", "legalname",
		"preferredname", "nickname", "contactname", "membername", "subscribername", "guardianname",
		"emergencycontact", "emergencycontactname", "nameofpatient", "fname", "lname")
	add(kDate, false, "dob", "dateofbirth", "birthdate", "birthday", "birthdt", "deathdate", "dateofdeath",
		"admissiondate", "admitdate", "dischargedate", "dateofservice", "servicedate", "visitdate", "appointmentdate")
	add(kSSN, false, "ssn", "socialsecuritynumber", "socialsecurity", "socialsecurityno")
	add(kITIN, false, "itin", "taxid", "tin")
	add(kMRN, false, "mrn", "medicalrecordnumber", "medicalrecord", "medicalrecordno", "chartnumber")
	add(kPhone, false, "phone", "phonenumber", "phoneno", "telephone", "tel", "mobilenumber",
		"cellphone", "cellnumber", "homephone", "workphone", "mobilephone")
	add(kPhone, true, "mobile", "cell")
	add(kFax, false, "fax", "faxnumber", "faxno")
	add(kEmail, false, "email", "emailaddress", "emailaddr")
	add(kEmail, true, "mail")
	add(kAddress, true, "address", "street", "city", "addr", "location", "residence", "county", "town")
	add(kAddress, false, "streetaddress", "homeaddress", "mailingaddress", "billingaddress", "shippingaddress",
		"patientaddress", "postaladdress", "addressline", "addressline1", "addressline2", "address1", "address2",
		"street1", "street2", "streetname", "housenumber", "residentialaddress")
	add(kZIP, false, "zip", "zipcode", "postalcode", "postcode", "zip4")
	add(kAccount, true, "account", "acct")
	add(kAccount, false, "accountnumber", "accountno", "acctnumber", "acctno", "accountid", "bankaccount",
		"routingnumber")
	add(kMember, false, "memberid", "membernumber", "memberno", "subscriberid", "subscribernumber",
		"healthplanid", "healthplannumber", "beneficiaryid", "insuranceid", "insurancenumber", "enrolleeid")
	add(kPolicy, false, "policynumber", "policyno", "policyid", "groupnumber")
	add(kLicense, true, "license", "licence", "certificate")
	add(kLicense, false, "licensenumber", "licenseno", "driverslicense", "driverlicense", "dlnumber",
		"certificatenumber", "licenceno", "licencenumber")
	add(kDevice, false, "serialnumber", "serialno", "deviceserial", "deviceid", "deviceserialnumber",
		"imei", "udi", "macaddress", "macaddr")
	add(kIP, false, "ip", "ipaddress", "ipaddr", "clientip", "remoteip", "remoteaddr", "remoteaddress",
		"clientaddr", "clientaddress", "xforwardedfor", "forwardedfor", "realip", "xrealip", "sourceip", "srcip", "userip")
	add(kNPI, false, "npi")
	add(kDEA, false, "dea", "deanumber")
	add(kMBI, false, "mbi", "medicareid", "medicarenumber", "hicn")
	add(kCard, false, "creditcard", "cardnumber", "ccnumber", "creditcardnumber", "pan", "cardno")
	add(kIBAN, false, "iban", "bankiban")
	add(kVIN, false, "vin", "vehicleid")
	add(kAge, true, "age")
	add(kAge, false, "patientage", "ageyears", "ageinyears")
	add(kID, false, "patientid", "personid", "patientnumber", "patientno", "encounterid", "caseid")
	add(kURL, false, "homepage", "website", "personalurl")
	return m
}()

// keyWords splits a key into lower-case words at separators and case
// changes: "patientFirstName" -> patient first name, "PATIENT_NAME" ->
// patient name, "x-forwarded-for" -> x forwarded for.
func keyWords(key string) []string {
	var words []string
	start := -1
	flush := func(e int) {
		if start >= 0 && e > start {
			words = append(words, strings.ToLower(key[start:e]))
		}
		start = -1
	}
	for k := 0; k < len(key); k++ {
		c := key[k]
		switch {
		case isLetter(c) || isDigit(c):
			if start < 0 {
				start = k
				continue
			}
			// camelCase boundary: lower->Upper, or the last capital of an
			// acronym before a lower-case letter ("SSNValue").
			prev := key[k-1]
			if isUpper(c) && (isLower(prev) || isDigit(prev)) {
				flush(k)
				start = k
			} else if isUpper(c) && isUpper(prev) && k+1 < len(key) && isLower(key[k+1]) {
				flush(k)
				start = k
			}
		default:
			flush(k)
		}
	}
	flush(len(key))
	return words
}

// normKey lower-cases a key and drops everything but letters and digits.
func normKey(key string) string {
	var b strings.Builder
	for k := 0; k < len(key); k++ {
		c := key[k]
		if isUpper(c) {
			b.WriteByte(c | 0x20)
		} else if isLower(c) || isDigit(c) {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// keyClass is the cached classification of one attribute key.
type keyClass struct {
	phi     bool
	k       kid
	pass    bool // value passes untouched
	allowed bool // on the allow-list (meaningful only when one is set)
	keyPHI  bool // the key text itself contains PHI
}

// keyRules holds the handler's key configuration and a cache of
// classifications, safe for concurrent use.
//
// The cache is a fixed two-way table of atomic pointers indexed by a hash
// of the key: a hit costs a hash and a string comparison, with no lock and
// no allocation; its size is bounded whatever keys a program logs (map keys
// included), as new entries replace old ones.
type keyRules struct {
	extra map[string]keyRule // normalized caller keys
	pass  map[string]bool
	allow map[string]bool // nil: no allow-list
	text  *textConfig
	// nocache disables the cache, for the immutable package-level rules.
	nocache bool

	seed  maphash.Seed
	cache [keyCacheSize]atomic.Pointer[keyEntry]
}

type keyEntry struct {
	key string
	c   keyClass
}

const keyCacheSize = 512 // a power of two

func newKeyRules(o *Options, text *textConfig) *keyRules {
	r := &keyRules{extra: map[string]keyRule{}, pass: map[string]bool{}, text: text, seed: maphash.MakeSeed()}
	for name, k := range o.PHIKeys {
		id, ok := kidOf(k)
		if !ok {
			id = kID
		}
		if n := normKey(name); n != "" {
			r.extra[n] = keyRule{k: id}
		}
	}
	for _, name := range o.PassKeys {
		r.pass[normKey(name)] = true
	}
	if len(o.AllowKeys) > 0 {
		r.allow = map[string]bool{}
		for _, name := range o.AllowKeys {
			r.allow[normKey(name)] = true
		}
	}
	return r
}

// classify returns the class of key, from the cache when possible.
func (r *keyRules) classify(key string) keyClass {
	if r.nocache {
		return r.compute(key)
	}
	h := maphash.String(r.seed, key)
	i, j := h&(keyCacheSize-1), (h>>32)&(keyCacheSize-1)
	if e := r.cache[i].Load(); e != nil && e.key == key {
		return e.c
	}
	if e := r.cache[j].Load(); e != nil && e.key == key {
		return e.c
	}
	c := r.compute(key)
	e := &keyEntry{key: key, c: c}
	if r.cache[i].Load() == nil {
		r.cache[i].Store(e)
	} else {
		r.cache[j].Store(e)
	}
	return c
}

func (r *keyRules) lookup(norm string, whole bool) (kid, bool) {
	if rule, ok := r.extra[norm]; ok && (whole || !rule.exact) {
		return rule.k, true
	}
	if rule, ok := builtinKeys[norm]; ok && (whole || !rule.exact) {
		return rule.k, true
	}
	return 0, false
}

func (r *keyRules) compute(key string) keyClass {
	var c keyClass
	norm := normKey(key)
	c.pass = r.pass[norm]
	c.allowed = r.allow[norm]
	_, c.keyPHI = r.text.redact(key, nil)
	// "phone2", "address_1": trailing digits number repeated fields.
	for _, n := range [...]string{norm, strings.TrimRight(norm, "0123456789")} {
		if k, ok := r.lookup(n, true); ok {
			c.phi, c.k = true, k
			return c
		}
	}
	words := keyWords(key)
	for n := 1; n <= 4 && n < len(words); n++ {
		suffix := strings.Join(words[len(words)-n:], "")
		if k, ok := r.lookup(suffix, false); ok {
			c.phi, c.k = true, k
			return c
		}
	}
	return c
}

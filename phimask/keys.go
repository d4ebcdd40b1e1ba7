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
	c.k, c.phi = r.phiKind(norm, keyWords(key))
	return c
}

// phiKind reports whether a key, given normalized and split into words, is
// a PHI key, and of which kind.
func (r *keyRules) phiKind(norm string, words []string) (kid, bool) {
	// Plurals name lists of the same thing: "patientNames", "emails".
	// Trailing digits number repeated fields ("customer_name_2").
	sing := make([]string, 0, len(words))
	for _, w := range words {
		if w = strings.TrimRight(w, "0123456789"); w != "" {
			sing = append(sing, singular(w))
		}
	}
	joined := strings.Join(sing, "")
	// "phone2", "address_1": trailing digits number repeated fields.
	for _, n := range [...]string{norm, strings.TrimRight(norm, "0123456789"), joined} {
		if k, ok := r.lookup(n, true); ok {
			return k, true
		}
	}
	for n := 1; n <= 4 && n < len(sing); n++ {
		suffix := strings.Join(sing[len(sing)-n:], "")
		if k, ok := r.lookup(suffix, false); ok {
			return k, true
		}
	}
	// "ssnLast4", "birth_year", "dateOfBirthStr", "primary_email_addr": a
	// few words make the key PHI wherever they stand, unless the key is
	// about the field rather than its value ("email_verified", "has_ssn").
	for i, w := range sing {
		k, ok := anyWordKeys[w]
		if !ok {
			continue
		}
		if i+1 < len(sing) && metaWords[sing[i+1]] || i > 0 && metaPrefixes[sing[i-1]] {
			continue
		}
		return k, true
	}
	// "customerName", "insured_name", "motherName": a name of a person,
	// unless the first part is a technical one ("hostName", "span_name").
	if n := len(sing); n > 1 && sing[n-1] == "name" {
		if !technicalNames[sing[n-2]] {
			return kName, true
		}
	} else if n == 1 && len(joined) > len("name")+2 && strings.HasSuffix(joined, "name") {
		if !technicalNames[strings.TrimSuffix(joined, "name")] {
			return kName, true
		}
	}
	return 0, false
}

// singular drops a plural ending from a lower-case word: "names" -> name,
// "addresses" -> address, "cities" -> city. Words ending in "ss", "us" or
// "is" ("status", "analysis") are kept.
func singular(w string) string {
	switch {
	case len(w) < 4:
		return w
	case strings.HasSuffix(w, "sses"):
		return w[:len(w)-2]
	case strings.HasSuffix(w, "ies"):
		return w[:len(w)-3] + "y"
	case strings.HasSuffix(w, "ss"), strings.HasSuffix(w, "us"), strings.HasSuffix(w, "is"):
		return w
	case w[len(w)-1] == 's':
		return w[:len(w)-1]
	}
	return w
}

// anyWordKeys are words that make a key a PHI key wherever they stand in
// it. Read-only.
var anyWordKeys = map[string]kid{
	"ssn": kSSN, "dob": kDate, "birth": kDate, "email": kEmail, "phone": kPhone,
}

// metaWords, after one of anyWordKeys, make the key describe the field
// rather than hold its value ("email_verified", "phoneType"). Read-only.
var metaWords = map[string]bool{
	"verified": true, "verify": true, "verification": true, "enabled": true, "disabled": true,
	"valid": true, "validated": true, "validation": true, "present": true, "provided": true,
	"required": true, "missing": true, "count": true, "type": true, "kind": true, "status": true,
	"format": true, "length": true, "len": true, "sent": true, "optin": true, "optout": true,
	"opt": true, "consent": true, "changed": true, "updated": true, "flag": true, "regex": true,
	"pattern": true, "template": true, "domain": true, "provider": true, "field": true,
	"column": true, "error": true, "err": true, "confirmed": true, "bounced": true,
}

// metaPrefixes, before one of anyWordKeys, do the same ("has_ssn",
// "isPhoneVerified"). Read-only.
var metaPrefixes = map[string]bool{
	"has": true, "is": true, "no": true, "missing": true, "invalid": true, "require": true,
	"required": true, "need": true, "num": true, "count": true,
}

// technicalNames are the first words of "<x>Name" keys that name things of
// the system, not people: "hostName", "service_name", "podName". A
// "userName" is a PHI key (a patient portal login identifies a patient);
// it is in builtinKeys. So are "accountName" (the holder of an account)
// and "deviceName" (often the owner's name). Read-only.
var technicalNames = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`host service svc file path dir base pod container node table column col queue topic bucket key
		field type kind class struct app application func function method package pkg module metric event
		span trace route db database schema index cluster region zone tenant server domain dns cert secret
		vault resource group role team project env environment stage job task step workflow pipeline image
		tag branch repo repository bin binary command cmd program process proc thread worker handler logger
		log channel stream subscription storage blob share volume disk interface iface network net vnet
		subnet endpoint api operation op action activity feature flag setting config param parameter
		property prop attribute attr label annotation header cookie query var variable const enum test
		suite rule check probe plugin provider driver codec format algorithm alg cipher hash font color
		icon theme layout view page screen component widget form template model entity object obj
		collection partition shard replica instance machine vm computer site facility department dept unit
		ward room product item plan payer insurer drug medication med code tab window dataset cron timer
		lock mutex cache store sensor bundle release version build deployment deploy daemonset statefulset
		replicaset namespace ns org organization company vendor brand series category keyvault kv dev port
		link bridge peer remote commit ref sheet arg opt option exe executable lib library script scope
		context ctx locale lang language country state currency certificate re`) {
		m[w] = true
	}
	return m
}()

package phimask

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/brianvoe/gofakeit/v7"
	"github.com/stretchr/testify/require"
)

// phiGen builds synthetic PHI with gofakeit plus the check digits the
// detectors validate. Nothing here is real data.
type phiGen struct{ f *gofakeit.Faker }

var simpleName = regexp.MustCompile(`^[A-Z][a-z]{2,}$`)

func (g phiGen) name() string {
	for {
		first, last := g.f.FirstName(), g.f.LastName()
		if simpleName.MatchString(first) && simpleName.MatchString(last) {
			return first + " " + last
		}
	}
}

func (g phiGen) ssn() string {
	area := g.f.Number(1, 899)
	if area == 666 {
		area = 667
	}
	return fmt.Sprintf("%03d-%02d-%04d", area, g.f.Number(1, 99), g.f.Number(1, 9999))
}

func (g phiGen) phone() string {
	a, e, n := g.f.Number(200, 999), g.f.Number(200, 999), g.f.Number(0, 9999)
	switch g.f.Number(0, 3) {
	case 0:
		return fmt.Sprintf("(%d) %d-%04d", a, e, n)
	case 1:
		return fmt.Sprintf("%d-%d-%04d", a, e, n)
	case 2:
		return fmt.Sprintf("%d.%d.%04d", a, e, n)
	default:
		return fmt.Sprintf("+1 %d %d %04d", a, e, n)
	}
}

// luhnDigit returns the check digit that makes body+digit pass Luhn
// (with extra added to the sum).
func luhnDigit(body string, extra int) byte {
	for d := byte('0'); d <= '9'; d++ {
		if luhn([]byte(body+string(d)), extra) {
			return d
		}
	}
	panic("unreachable")
}

func (g phiGen) npi() string {
	body := strconv.Itoa(g.f.Number(1, 2)) + g.f.DigitN(8)
	return body + string(luhnDigit(body, 24))
}

func (g phiGen) card() string {
	body := strconv.Itoa(g.f.Number(3, 6)) + g.f.DigitN(14)
	return body + string(luhnDigit(body, 0))
}

func (g phiGen) mbi() string {
	const letters = "ACDEFGHJKMNPQRTUVWXY"
	l := func() byte { return letters[g.f.Number(0, len(letters)-1)] }
	d := func() byte { return byte('0' + g.f.Number(0, 9)) }
	b := []byte{byte('1' + g.f.Number(0, 8)), l(), d(), d(), l(), d(), d(), l(), l(), d(), d()}
	return string(b[:4]) + "-" + string(b[4:7]) + "-" + string(b[7:])
}

func (g phiGen) dea() string {
	const first = "ABFGM"
	w := string(first[g.f.Number(0, len(first)-1)]) + string(byte('A'+g.f.Number(0, 25))) + g.f.DigitN(6)
	d := func(k int) int { return int(w[1+k] - '0') }
	sum := d(1) + d(3) + d(5) + 2*(d(2)+d(4)+d(6))
	return w + strconv.Itoa(sum%10)
}

func (g phiGen) iban() string {
	bban := g.f.DigitN(18)
	for c := 2; c < 99; c++ {
		v := fmt.Sprintf("DE%02d%s", c, bban)
		if validIBAN([]byte(v)) {
			return v
		}
	}
	panic("unreachable")
}

func (g phiGen) date() string {
	t := g.f.DateRange(time.Date(1935, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 12, 31, 0, 0, 0, 0, time.UTC))
	layouts := []string{"2006-01-02", "01/02/2006", "2 Jan 2006", "January 2, 2006"}
	return t.Format(layouts[g.f.Number(0, len(layouts)-1)])
}

func (g phiGen) street() string {
	suffix := []string{"Street", "St", "Avenue", "Ave", "Road", "Blvd", "Lane"}
	return fmt.Sprintf("%d %s %s", g.f.Number(1, 99999), g.name()[0:0]+simpleWord(g), suffix[g.f.Number(0, len(suffix)-1)])
}

func simpleWord(g phiGen) string {
	for {
		if w := g.f.LastName(); simpleName.MatchString(w) {
			return w
		}
	}
}

// zipLine returns "City, ST 12345" and its city and "ST 12345" parts (the
// bare five digits could occur inside other numbers of the record).
func (g phiGen) zipLine() (city, stateZIP, line string) {
	city = simpleWord(g) + "ville"
	stateZIP = g.f.RandomString([]string{"IL", "CA", "NY", "TX", "WA"}) + " " + fmt.Sprintf("%05d", g.f.Number(10000, 99999))
	return city, stateZIP, city + ", " + stateZIP
}

func (g phiGen) ipv4() string {
	return fmt.Sprintf("%d.%d.%d.%d", g.f.Number(1, 126), g.f.Number(0, 255), g.f.Number(0, 255), g.f.Number(1, 254))
}

func (g phiGen) mrn() string { return "M" + g.f.DigitN(7) }

type leakPatient struct {
	Name    string `json:"name"`
	Notes   string
	Member  string `phi:"member_id"`
	Ward    string
	private string
	Visits  []leakVisit
}

type leakVisit struct {
	When string
	Note string
}

type leakValuer struct{ name, ssn string }

func (v leakValuer) LogValue() slog.Value {
	return slog.GroupValue(slog.String("patient_name", v.name), slog.String("comment", "ssn "+v.ssn))
}

type leakStringer string

func (s leakStringer) String() string { return "contact " + string(s) }

// leakRecord logs one record carrying PHI in every shape, and returns the
// raw values (with labels) and the non-PHI markers that must survive.
func leakRecord(l *slog.Logger, g phiGen, i int) (values, labels, keep []string) {
	add := func(label, v string) string {
		values, labels = append(values, v), append(labels, label)
		return v
	}
	ward := fmt.Sprintf("W%d", i)
	keep = []string{ward, "/api/v1/visits", "cache warmed"}
	city, stateZIP, line := g.zipLine()
	add("city", city)
	add("state zip", stateZIP)
	msg := fmt.Sprintf("admitted patient %s to ward %s, SSN %s, DOB %s, lives at %s, %s",
		add("name", g.name()), ward, add("ssn", g.ssn()), add("date", g.date()), add("street", g.street()), line)
	pat := &leakPatient{
		Name: add("struct name", g.name()), Notes: "phone " + add("struct phone", g.phone()),
		Member: add("tagged member", "MB"+g.f.DigitN(6)), Ward: ward, private: add("unexported", "priv"+g.f.DigitN(8)),
		Visits: []leakVisit{{When: add("visit date", g.date()), Note: "npi " + add("npi", g.npi())}},
	}
	lg := l.With("request_patient", add("with name", g.name()), "route", "/api/v1/visits").
		WithGroup("visit").With("note", "email "+add("with email", g.f.Email()))
	lg.LogAttrs(context.Background(), slog.LevelInfo, msg,
		slog.String("ssn", add("key ssn", g.ssn())),
		slog.String("comment", "card "+add("card", g.card())+" cache warmed"),
		slog.Group("contact", slog.String("phone", add("group phone", g.phone())),
			slog.Group("inner", slog.String("text", "fax: "+add("fax", g.phone())))),
		slog.Any("valuer", leakValuer{name: add("valuer name", g.name()), ssn: add("valuer ssn", g.ssn())}),
		slog.Any("err", errors.New("lookup failed for "+add("error email", g.f.Email()))),
		slog.Any("stringer", leakStringer(add("stringer phone", g.phone()))),
		slog.Any("bytes", []byte("client "+add("bytes ip", g.ipv4()))),
		slog.Any("map", map[string]any{"mrn": add("map mrn", g.mrn()), "note": "MBI " + add("mbi", g.mbi())}),
		slog.Any("list", []string{"DEA " + add("dea", g.dea()), "IBAN " + add("iban", g.iban())}),
		slog.Any("patient_record", pat),
		slog.Int("ssn_number", must(strconv.Atoi(keepDigits(add("int ssn", g.ssn()))))),
		slog.String("age_note", add("age", "aged "+strconv.Itoa(g.f.Number(91, 110)))), // not 90: "aged 90+" is the Safe Harbor output
		slog.Int("status", 200),
	)
	return values, labels, keep
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestNoPHILeaks(t *testing.T) {
	t.Parallel()
	const records = 2000
	options := map[string]*Options{
		"defaults":    nil,
		"keyed":       {Key: []byte("0123456789abcdef0123456789abcdef")},
		"safe harbor": {SafeHarbor: true},
	}
	for name, opts := range options {
		for _, format := range []string{"json", "text"} {
			t.Run(name+"/"+format, func(t *testing.T) {
				t.Parallel()
				leakRun(t, format, opts, records)
			})
		}
	}
}

// leakRun logs records through a Handler with opts in front of a JSON or
// Text handler and checks every record's output.
func leakRun(t *testing.T, format string, opts *Options, records int) {
	g := phiGen{gofakeit.New(42)}
	var buf bytes.Buffer
	var next slog.Handler = slog.NewJSONHandler(&buf, nil)
	if format == "text" {
		next = slog.NewTextHandler(&buf, nil)
	}
	l := slog.New(NewHandler(next, opts))
	for i := 0; i < records; i++ {
		buf.Reset()
		values, labels, keep := leakRecord(l, g, i)
		out := buf.String()
		assertNoLeak(t, out, values, labels)
		assertKept(t, out, keep...)
		if t.Failed() {
			t.Fatalf("record %d leaked or lost content", i)
		}
	}
}

// TestGeneratorValuesDetected checks each generated value on its own, so
// that a generator bug cannot hide behind context words.
func TestGeneratorValuesDetected(t *testing.T) {
	t.Parallel()
	g := phiGen{gofakeit.New(7)}
	for i := 0; i < 500; i++ {
		for label, v := range map[string]string{
			"ssn": g.ssn(), "phone": g.phone(), "npi": g.npi(), "card": g.card(), "mbi": g.mbi(),
			"dea": g.dea(), "iban": g.iban(), "date": g.date(), "ip": g.ipv4(), "email": g.f.Email(),
		} {
			f := Detect(v)
			require.Len(t, f, 1, "generated %s #%d not detected as one finding", label, i)
			require.Equal(t, 0, f[0].Start, label)
			require.Equal(t, len(v), f[0].End, label)
		}
	}
}

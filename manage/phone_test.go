package manage_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/nyaruka/phonenumbers"
	"golang.org/x/text/collate"
	"golang.org/x/text/language"

	"github.com/hostportal/idp/manage"
)

// The sentences ParsePhone shows, as tests of pages may rely on them.
const (
	msgEnter     = "Enter your cell phone number."
	msgNotNumber = "That is not a phone number. Enter the digits of your cell phone number"
	msgCountry   = "Select your country in Country Code, or start the number with + and the country code."
	msgLandline  = "That number cannot receive text messages (it is a landline number). Enter a cell phone number."
	msgTollFree  = "That number cannot receive text messages (it is a toll-free number). Enter a cell phone number."
	msgPremium   = "That number cannot receive text messages (it is a premium-rate number). Enter a cell phone number."
)

func TestParsePhone(t *testing.T) {
	tests := []struct {
		name, region, number string
		want                 string // E.164 on success
		msg                  string // part of the error otherwise
	}{
		// Numbers phonenumbers v1.8.1 accepts as mobile or fixed-line-or-mobile.
		{name: "US national", region: "US", number: "(415) 555-0123", want: "+14155550123"},
		{name: "US with dots", region: "US", number: "415.555.0123", want: "+14155550123"},
		{name: "US with slash and spaces", region: "US", number: " 415/555 0123 ", want: "+14155550123"},
		{name: "US with trunk prefix 1", region: "US", number: "1-650-253-0000", want: "+16502530000"},
		{name: "region in lower case", region: "us", number: "650 253 0000", want: "+16502530000"},
		{name: "unicode dash and no-break space", region: "US", number: "415\u00a0555\u20130123", want: "+14155550123"},
		{name: "UK national", region: "GB", number: "07400 123456", want: "+447400123456"},
		{name: "UK international ignores region", region: "US", number: "+44 7400 123456", want: "+447400123456"},
		{name: "international without region", number: "+33 6 12 34 56 78", want: "+33612345678"},
		{name: "international with (0)", number: "+44 (0)7400 123456", want: "+447400123456"},
		{name: "IDD prefix from the US", region: "US", number: "011 44 7400 123456", want: "+447400123456"},
		{name: "Guernsey mobile with GB selected", region: "GB", number: "07911 123456", want: "+447911123456"},
		{name: "Canada with US selected", region: "US", number: "416-555-0123", want: "+14165550123"},
		{name: "German mobile", region: "DE", number: "01512 3456789", want: "+4915123456789"},
		{name: "St Helena 5-digit mobile", region: "SH", number: "51234", want: "+29051234"},

		{name: "empty", region: "US", number: "", msg: msgEnter},
		{name: "blank", region: "US", number: "   ", msg: msgEnter},
		{name: "letters", region: "US", number: "call me", msg: msgNotNumber + ", e.g. (201) 555-0123."},
		{name: "vanity letters", region: "US", number: "1-800-FLOWERS", msg: msgNotNumber},
		{name: "extension", region: "US", number: "415 555 0123 ext 5", msg: msgNotNumber},
		{name: "plus in the middle", region: "US", number: "415+555+0123", msg: msgNotNumber},
		{name: "only a plus", number: "+", msg: msgNotNumber},
		{name: "full-width digits", region: "US", number: "４１５５５５０１２３", msg: msgNotNumber},
		{name: "too short", region: "US", number: "5550", msg: msgNotNumber},
		{name: "too short international", number: "+1 555", msg: msgNotNumber},
		{name: "too long", region: "US", number: "415 555 0123 4567 8901 23", msg: msgNotNumber},
		{name: "too long international", number: "+1 234 567 890 123 456", msg: msgNotNumber},
		{name: "huge input", region: "US", number: strings.Repeat("1", 10000), msg: msgNotNumber},
		{name: "UK example for GB", region: "GB", number: "hello", msg: msgNotNumber + ", e.g. 07400 123456."},
		{name: "no region", number: "415 555 0123", msg: msgCountry},
		{name: "unknown region", region: "XX", number: "415 555 0123", msg: msgCountry},
		{name: "non-geographic region", region: "001", number: "415 555 0123", msg: msgCountry},
		{name: "unknown country code", number: "+999 1234567", msg: "does not start with a known country code"},
		{name: "UK number typed with US selected", region: "US", number: "07400 123456", msg: "That is not a valid cell phone number for United States. Check the number and the country code."},
		{name: "UK number without 0 with US selected", region: "US", number: "7400 123456", msg: "not a valid cell phone number for United States"},
		{name: "invalid UK drama range", region: "GB", number: "07700 900123", msg: "not a valid cell phone number for United Kingdom"},
		{name: "short for its country", number: "+1 415 555", msg: "not a valid cell phone number for United States"},
		{name: "UK landline", number: "+44 20 7946 0000", msg: msgLandline},
		{name: "UK landline national", region: "GB", number: "020 7946 0000", msg: msgLandline},
		{name: "German landline", region: "DE", number: "030 123456", msg: msgLandline},
		{name: "UK premium rate", number: "+44 909 879 0000", msg: msgPremium},
		{name: "US premium rate", region: "US", number: "900-555-0123", msg: msgPremium},
		{name: "US toll free", region: "US", number: "(800) 555-0199", msg: msgTollFree},
		{name: "UK freephone", region: "GB", number: "0800 123 4567", msg: msgTollFree},
		{name: "German shared cost", number: "+49 180 1 2345", msg: "(it is a shared-cost number)"},
		{name: "UK pager", number: "+44 76 4012 3456", msg: "(it is a pager number)"},
		{name: "UK UAN", number: "+44 55 1234 5678", msg: "(it is a company's universal access number)"},
		{name: "international freephone", number: "+800 1234 5678", msg: "satellite or international service number"},
		{name: "satellite phone", number: "+881 6 12345678", msg: "satellite or international service number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := manage.ParsePhone(tt.region, tt.number)
			if tt.msg == "" {
				if err != nil || got != tt.want {
					t.Fatalf("ParsePhone(%q, %q) = %q, %v; want %q", tt.region, tt.number, got, err, tt.want)
				}
				return
			}
			if got != "" {
				t.Errorf("ParsePhone(%q, %q) = %q, want an error", tt.region, tt.number, got)
			}
			wantInvalid(t, err, "phone", tt.msg)
		})
	}
}

func TestNormalizePhoneRefusesNoSMS(t *testing.T) {
	tests := []struct{ phone, want, msg string }{
		{phone: "+1 (415) 555-0123", want: "+14155550123"},
		{phone: "+44 7400 123456", want: "+447400123456"},
		{phone: "+44 20 7946 0000", msg: msgLandline},
		{phone: "+44 909 879 0000", msg: msgPremium},
		{phone: "+1 800 555 0199", msg: msgTollFree},
		{phone: "+1 800 FLOWERS", msg: "it is not a phone number"},
		{phone: "+999 1234567", msg: "it is not a phone number"},
		{phone: "+1 555", msg: "not a valid number for country code +1"},
		{phone: "07400 123456", msg: "start it with +"},
	}
	for _, tt := range tests {
		t.Run(tt.phone, func(t *testing.T) {
			got, err := manage.NormalizePhone(tt.phone)
			if tt.msg == "" {
				if err != nil || got != tt.want {
					t.Fatalf("NormalizePhone(%q) = %q, %v; want %q", tt.phone, got, err, tt.want)
				}
				return
			}
			wantInvalid(t, err, "phone", tt.msg)
		})
	}
}

func TestNewPhonePolicy(t *testing.T) {
	good := []string{"1", " +44 ", "us", "Gb", "GG"}
	if _, err := manage.NewPhonePolicy(good); err != nil {
		t.Fatalf("NewPhonePolicy(%q): %v", good, err)
	}
	for _, empty := range [][]string{nil, {}} {
		p, err := manage.NewPhonePolicy(empty)
		if err != nil || !p.Allows("+881612345678") {
			t.Errorf("NewPhonePolicy(%q) = %v, %v; want a policy that allows all", empty, p, err)
		}
	}
	bad := []struct{ entry, msg string }{
		{"", "empty"},
		{"  ", "empty"},
		{"UK", "the United Kingdom is GB"},
		{"XX", `"XX" is not a country`},
		{"usa", `"usa" is not a country`},
		{"United States", `"United States" is not a country`},
		{"+800", "no country uses +800"},
		{"+999", "no country uses +999"},
		{"+", `"+" is not a calling code`},
		{"+1a", `"+1a" is not a calling code`},
		{"01", `"01" is not a calling code`},
		{"1234", `"1234" is not a calling code`},
		{"001", `"001" is not a calling code`},
	}
	for _, tt := range bad {
		t.Run(tt.entry, func(t *testing.T) {
			p, err := manage.NewPhonePolicy([]string{"US", tt.entry})
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("NewPhonePolicy(%q) = %v, %v; want an error containing %q", tt.entry, p, err, tt.msg)
			}
		})
	}
	// Every bad entry is reported, not just the first.
	_, err := manage.NewPhonePolicy([]string{"XX", "US", "+999"})
	if err == nil || !strings.Contains(err.Error(), `"XX"`) || !strings.Contains(err.Error(), `"+999"`) {
		t.Errorf("two bad entries: %v", err)
	}
}

func mustPolicy(t *testing.T, entries ...string) *manage.PhonePolicy {
	t.Helper()
	p, err := manage.NewPhonePolicy(entries)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPhonePolicyAllows(t *testing.T) {
	const (
		us  = "+14155550123"
		ca  = "+14165550123"
		gb  = "+447400123456"
		gg  = "+447911123456" // a Guernsey mobile in +44
		fr  = "+33612345678"
		sat = "+881612345678" // a satellite phone: no country
	)
	tests := []struct {
		name    string
		policy  *manage.PhonePolicy
		allowed []string
		refused []string
		regions []string // AllowsRegion true
		others  []string // AllowsRegion false
	}{
		{name: "nil", policy: nil, allowed: []string{us, ca, gb, gg, fr, sat, "junk"}, regions: []string{"US", "GB", "FR"}},
		{name: "zero", policy: &manage.PhonePolicy{}, allowed: []string{us, gb, sat}, regions: []string{"US"}},
		{name: "calling code", policy: mustPolicy(t, "+44"), allowed: []string{gb, gg}, refused: []string{us, ca, fr, sat, "junk"},
			regions: []string{"GB", "GG", "JE", "IM", "gb"}, others: []string{"US", "FR", "XX", ""}},
		{name: "NANPA code", policy: mustPolicy(t, "1"), allowed: []string{us, ca}, refused: []string{gb},
			regions: []string{"US", "CA", "JM"}, others: []string{"GB"}},
		{name: "region", policy: mustPolicy(t, "US", "fr"), allowed: []string{us, fr}, refused: []string{ca, gb, gg, sat},
			regions: []string{"US", "us", " FR "}, others: []string{"CA", "GB", "GG"}},
		{name: "GB is not Guernsey", policy: mustPolicy(t, "GB"), allowed: []string{gb}, refused: []string{gg},
			regions: []string{"GB"}, others: []string{"GG", "JE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, n := range tt.allowed {
				if !tt.policy.Allows(n) {
					t.Errorf("Allows(%s) = false", n)
				}
			}
			for _, n := range tt.refused {
				if tt.policy.Allows(n) {
					t.Errorf("Allows(%s) = true", n)
				}
			}
			for _, r := range tt.regions {
				if !tt.policy.AllowsRegion(r) {
					t.Errorf("AllowsRegion(%q) = false", r)
				}
			}
			for _, r := range tt.others {
				if tt.policy.AllowsRegion(r) {
					t.Errorf("AllowsRegion(%q) = true", r)
				}
			}
		})
	}
}

func TestServicePhonePolicy(t *testing.T) {
	svc := newService(t)
	svc.Phones = mustPolicy(t, "US", "+33")
	ctx := context.Background()
	if _, err := svc.CreateUser(ctx, manage.Operator, manage.NewUser{Username: "alice", Email: "alice@example.com"}); err != nil {
		t.Fatal(err)
	}

	tests := []struct{ name, phone, want, msg string }{
		{name: "allowed region", phone: "+1 415 555 0123", want: "+14155550123"},
		{name: "allowed code", phone: "+33 6 12 34 56 78", want: "+33612345678"},
		{name: "other code", phone: "+44 7400 123456",
			msg: "SMS codes are not sent to +44 numbers here (sms.allowed_countries). Use a number from an allowed country."},
		{name: "other region of an allowed code", phone: "+1 416 555 0123", msg: "SMS codes are not sent to +1 numbers from Canada here"},
		{name: "satellite", phone: "+881 6 12345678", msg: "satellite or international service number"},
		{name: "landline before policy", phone: "+44 20 7946 0000", msg: msgLandline},
	}
	for _, tt := range tests {
		t.Run("SetPhone "+tt.name, func(t *testing.T) {
			u, err := svc.SetPhone(ctx, manage.Operator, "alice", tt.phone)
			if tt.msg == "" {
				if err != nil || u.Phone != tt.want {
					t.Fatalf("SetPhone(%q) = %v, %v; want %s", tt.phone, u, err, tt.want)
				}
				return
			}
			wantInvalid(t, err, "phone", tt.msg)
			if strings.Contains(err.Error(), "7400") || strings.Contains(err.Error(), "555") {
				t.Errorf("the message repeats the number: %v", err)
			}
		})
	}

	before := len(events(t, svc))
	_, err := svc.CreateUser(ctx, manage.Operator, manage.NewUser{Username: "bob", Email: "bob@example.com", Phone: "+44 7400 123456"})
	wantInvalid(t, err, "phone", "SMS codes are not sent to +44 numbers here")
	if _, err := svc.GetUser(ctx, "bob"); err == nil {
		t.Error("bob was created with a refused phone")
	}
	if after := len(events(t, svc)); after != before {
		t.Errorf("a refused CreateUser wrote %d events", after-before)
	}
	// The refusal is one problem among the others of the request.
	_, err = svc.CreateUser(ctx, manage.Operator, manage.NewUser{Username: "bob", Email: "bob", Phone: "+44 7400 123456"})
	var fields []string
	for _, p := range manage.Problems(err) {
		fields = append(fields, p.Field)
	}
	if !slices.Equal(fields, []string{"email", "phone"}) {
		t.Errorf("Problems fields = %v, want [email phone]", fields)
	}
	if _, err := svc.CreateUser(ctx, manage.Operator, manage.NewUser{Username: "carol", Email: "carol@example.com", Phone: "+16502530000"}); err != nil {
		t.Errorf("CreateUser with an allowed phone: %v", err)
	}
}

func TestPhoneFormats(t *testing.T) {
	tests := []struct{ e164, region, display, masked string }{
		{"+14155550123", "US", "+1 415-555-0123", "+1 ••• ••• 0123"},
		{"+14165550123", "CA", "+1 416-555-0123", "+1 ••• ••• 0123"},
		{"+447400123456", "GB", "+44 7400 123456", "+44 •••• ••3456"},
		{"+447700900123", "", "+44 7700 900123", "+44 •••• ••0123"}, // formatted, though not a valid number
		{"+447911123456", "GG", "+44 7911 123456", "+44 •••• ••3456"},
		{"+33612345678", "FR", "+33 6 12 34 56 78", "+33 • •• •• 56 78"},
		{"+4915123456789", "DE", "+49 1512 3456789", "+49 •••• •••6789"},
		{"+29051234", "SH", "+290 51234", "+290 •••34"}, // fewer than 7 digits: keep two
		{"+80012345678", "", "+800 1234 5678", "+800 •••• 5678"},
		{"junk", "", "junk", ""},
		{"", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.e164, func(t *testing.T) {
			if got := manage.PhoneRegion(tt.e164); got != tt.region {
				t.Errorf("PhoneRegion = %q, want %q", got, tt.region)
			}
			if got := manage.DisplayPhone(tt.e164); got != tt.display {
				t.Errorf("DisplayPhone = %q, want %q", got, tt.display)
			}
			if got := manage.MaskedPhone(tt.e164); got != tt.masked {
				t.Errorf("MaskedPhone = %q, want %q", got, tt.masked)
			}
		})
	}
	// The national form, typed back with its Country Code, gives the number again.
	for _, e164 := range []string{"+14155550123", "+447400123456", "+33612345678"} {
		national := manage.NationalPhone(e164)
		if got, err := manage.ParsePhone(manage.PhoneRegion(e164), national); err != nil || got != e164 {
			t.Errorf("NationalPhone(%s) = %q, which parses as %q, %v", e164, national, got, err)
		}
	}
	if got := manage.NationalPhone("junk"); got != "junk" {
		t.Errorf("NationalPhone(junk) = %q", got)
	}
}

func TestCountries(t *testing.T) {
	all := manage.Countries(nil)
	if len(all) < 200 {
		t.Fatalf("Countries(nil) has %d entries", len(all))
	}
	byRegion := map[string]manage.Country{}
	for _, c := range all {
		if c.Name == "" || c.CallingCode == 0 || len(c.Region) != 2 {
			t.Errorf("incomplete entry %+v", c)
		}
		byRegion[c.Region] = c
	}
	for _, want := range []manage.Country{
		{Region: "US", Name: "United States", CallingCode: 1},
		{Region: "GB", Name: "United Kingdom", CallingCode: 44},
		{Region: "DE", Name: "Germany", CallingCode: 49},
		{Region: "AX", Name: "Åland Islands", CallingCode: 358},
	} {
		if got := byRegion[want.Region]; got != want {
			t.Errorf("Countries has %+v, want %+v", got, want)
		}
	}
	coll := collate.New(language.English)
	if !slices.IsSortedFunc(all, func(a, b manage.Country) int { return coll.CompareString(a.Name, b.Name) }) {
		t.Error("Countries(nil) is not sorted by name")
	}
	if i, j := slices.Index(all, byRegion["AX"]), slices.Index(all, byRegion["AL"]); i > j {
		t.Errorf("Åland Islands at %d after Albania at %d", i, j)
	}

	// The list is the caller's: changing it changes no later answer.
	all[0].Name = "changed"
	if manage.Countries(nil)[0].Name == "changed" {
		t.Error("Countries returns the shared list")
	}

	var regions []string
	for _, c := range manage.Countries(mustPolicy(t, "+44", "US")) {
		regions = append(regions, c.Region)
	}
	// Sorted by name: Guernsey, Isle of Man, Jersey, United Kingdom, United States.
	if want := []string{"GG", "IM", "JE", "GB", "US"}; !slices.Equal(regions, want) {
		t.Errorf("Countries(+44, US) = %v, want %v", regions, want)
	}
}

func TestRegionFromAcceptLanguage(t *testing.T) {
	tests := []struct{ header, want string }{
		{"en-US,en;q=0.9", "US"},
		{"de-CH", "CH"},
		{"fr", "FR"},
		{"de-DE,de;q=0.9,en-US;q=0.8,en;q=0.7", "DE"},
		{"en-GB;q=0.5, fr-CA", "CA"}, // by weight, not by position
		{"es-419,es;q=0.9", "ES"},    // 419 (Latin America) is no country
		{"pt-BR", "BR"},
		{"zh-Hant-TW", "TW"},
		{"und-CH", "CH"},
		{"*", ""},      // a wildcard says nothing
		{"fr;q=0", ""}, // q=0 means "not this"
		{"", ""},
		{"!!!", ""},
		{"en-US;q=x", ""},
		{strings.Repeat("en-US,", 200), ""}, // longer than 1 KiB
	}
	for _, tt := range tests {
		t.Run(tt.header, func(t *testing.T) {
			if got := manage.RegionFromAcceptLanguage(tt.header); got != tt.want {
				t.Errorf("RegionFromAcceptLanguage(%q) = %q, want %q", tt.header, got, tt.want)
			}
		})
	}
}

// FuzzParsePhone checks that ParsePhone never panics, that what it accepts
// is a valid E.164 number and that what it refuses is a phone *InvalidError.
// The seeds run in every go test.
func FuzzParsePhone(f *testing.F) {
	for _, s := range [][2]string{
		{"US", "(415) 555-0123"}, {"US", "+44 7400 123456"}, {"GB", "07400 123456"}, {"", "+33 6 12 34 56 78"},
		{"US", "011 44 7400 123456"}, {"US", "call me"}, {"", "+"}, {"", "++1"}, {"XX", "12"}, {"001", "+800 1234 5678"},
		{"US", "+1 900 555 0123"}, {"GB", "020 7946 0000"}, {"US", "0000000000000000000"}, {"SH", "51234"}, {"us", "(\u00a0)-./"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, region, number string) {
		got, err := manage.ParsePhone(region, number)
		if err != nil {
			var inv *manage.InvalidError
			if !errors.As(err, &inv) || inv.Field != "phone" || !strings.HasSuffix(inv.Message, ".") {
				t.Fatalf("ParsePhone(%q, %q) error %#v is not a phone sentence", region, number, err)
			}
			return
		}
		if len(got) < 2 || len(got) > 16 || got[0] != '+' || strings.Trim(got[1:], "0123456789") != "" {
			t.Fatalf("ParsePhone(%q, %q) = %q, not E.164", region, number, got)
		}
		num, perr := phonenumbers.Parse(got, "")
		if perr != nil || !phonenumbers.IsValidNumber(num) || phonenumbers.Format(num, phonenumbers.E164) != got {
			t.Fatalf("ParsePhone(%q, %q) = %q, which does not read back as a valid number", region, number, got)
		}
		if again, err := manage.ParsePhone("", got); err != nil || again != got {
			t.Fatalf("ParsePhone(\"\", %q) = %q, %v; want it unchanged", got, again, err)
		}
	})
}

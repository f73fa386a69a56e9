package manage

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"

	"github.com/nyaruka/phonenumbers"
	"golang.org/x/text/collate"
	"golang.org/x/text/language"
	"golang.org/x/text/language/display"
)

// Cell phone numbers: what a person may type, which numbers can receive an
// SMS code, and where codes may go. The rules live here once; ParsePhone
// (the pages) and NormalizePhone (operators, admin API) only word them for
// their readers.

// PhonePolicy says where SMS codes may go (sms.allowed_countries): a number
// is allowed when its calling code or its region is listed. Every SMS costs
// money and some destinations exist to collect it (SMS pumping), so a
// deployment that serves a few countries lists them. The zero value, and a
// nil *PhonePolicy, allow every country.
type PhonePolicy struct {
	codes   map[int32]bool  // calling codes allowed with all their regions
	regions map[string]bool // ISO 3166-1 alpha-2 regions allowed
}

// NewPhonePolicy parses the entries of sms.allowed_countries: calling codes
// ("1", "+44") or ISO 3166-1 alpha-2 regions ("US", "gb"), case-insensitive,
// spaces trimmed. An empty list allows every country. Every bad entry is
// reported at once, each error naming the entry; the caller prefixes the key.
func NewPhonePolicy(allowed []string) (*PhonePolicy, error) {
	p := &PhonePolicy{}
	var errs []error
	for _, entry := range allowed {
		e := strings.TrimSpace(entry)
		switch {
		case e == "":
			// An empty entry (a stray comma) must not silently turn the
			// list into "allow everything".
			errs = append(errs, errors.New(`an entry is empty: give a calling code such as +1 or a country such as US`))
		case strings.HasPrefix(e, "+") || isASCIIDigits(e):
			code, err := parseCallingCode(strings.TrimPrefix(e, "+"))
			if err != nil {
				errs = append(errs, fmt.Errorf("%q %s", entry, err.Error()))
				continue
			}
			if p.codes == nil {
				p.codes = make(map[int32]bool)
			}
			p.codes[code] = true
		default:
			region := strings.ToUpper(e)
			if len(region) != 2 || !phonenumbers.GetSupportedRegions()[region] {
				if region == "UK" {
					errs = append(errs, fmt.Errorf(`%q is not an ISO 3166-1 country code: the United Kingdom is GB`, entry))
				} else {
					errs = append(errs, fmt.Errorf("%q is not a country: write an ISO 3166-1 alpha-2 code such as US or GB, or a calling code such as +1", entry))
				}
				continue
			}
			if p.regions == nil {
				p.regions = make(map[string]bool)
			}
			p.regions[region] = true
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// parseCallingCode reads the digits of a calling code and refuses codes no
// country uses: the global ones (+800 freephone, +881 satellite, ...) serve
// no country and are a favourite of SMS pumping.
func parseCallingCode(digits string) (int32, error) {
	if len(digits) < 1 || len(digits) > 3 || !isASCIIDigits(digits) || digits[0] == '0' {
		return 0, errors.New("is not a calling code: write 1 to 3 digits such as +1 or +44")
	}
	n, err := strconv.Atoi(digits)
	if err != nil {
		return 0, errors.New("is not a calling code: write 1 to 3 digits such as +1 or +44")
	}
	for _, r := range phonenumbers.GetRegionCodesForCountryCode(n) {
		if r != nonGeoRegion {
			return int32(n), nil
		}
	}
	return 0, fmt.Errorf("is not a country's calling code: no country uses +%d", n)
}

// nonGeoRegion is what phonenumbers names the region of a global calling
// code such as +800 (UN M.49 "World"); it is no country.
const nonGeoRegion = "001"

func (p *PhonePolicy) allowsAll() bool {
	return p == nil || len(p.codes) == 0 && len(p.regions) == 0
}

// Allows reports whether SMS codes may go to the E.164 number e164. A
// calling code entry allows every region with that code ("+1": the United
// States, Canada and the Caribbean); a region entry allows the numbers
// phonenumbers places in that region. Anything unparsable is refused unless
// the policy allows everything.
func (p *PhonePolicy) Allows(e164 string) bool {
	if p.allowsAll() {
		return true
	}
	num, err := phonenumbers.Parse(e164, "")
	if err != nil {
		return false
	}
	return p.codes[num.GetCountryCode()] || p.regions[phonenumbers.GetRegionCodeForNumber(num)]
}

// AllowsRegion reports whether numbers of region (ISO 3166-1 alpha-2, any
// case) may receive SMS codes, for the Country Code select.
func (p *PhonePolicy) AllowsRegion(region string) bool {
	if p.allowsAll() {
		return true
	}
	r := strings.ToUpper(strings.TrimSpace(region))
	code := phonenumbers.GetCountryCodeForRegion(r)
	return p.regions[r] || code != 0 && p.codes[int32(code)]
}

// policyError is the refusal of a number the policy does not allow. It names
// the calling code, not the number, and names the country too when other
// countries of that code are allowed ("+1 numbers from Canada").
func (p *PhonePolicy) policyError(e164 string) error {
	if p.Allows(e164) {
		return nil
	}
	num, err := phonenumbers.Parse(e164, "")
	if err != nil {
		return invalid("phone", "SMS codes are not sent to that number here (sms.allowed_countries). Use a number from an allowed country.")
	}
	code := num.GetCountryCode()
	if region := phonenumbers.GetRegionCodeForNumber(num); region != "" && region != nonGeoRegion {
		for _, other := range phonenumbers.GetRegionCodesForCountryCode(int(code)) {
			if p.regions[other] {
				return invalid("phone", "SMS codes are not sent to +%d numbers from %s here (sms.allowed_countries). Use a number from an allowed country.", code, countryName(region))
			}
		}
	}
	return invalid("phone", "SMS codes are not sent to +%d numbers here (sms.allowed_countries). Use a number from an allowed country.", code)
}

// checkPhonePolicy refuses an E.164 number that s.Phones does not allow.
func (s *Service) checkPhonePolicy(e164 string) error {
	return s.Phones.policyError(e164)
}

// phoneProblem is why a typed number was refused. The rules decide the
// problem once; ParsePhone and NormalizePhone word it for their readers.
type phoneProblem int

const (
	phoneOK            phoneProblem = iota
	phoneEmpty                      // nothing typed
	phoneJunk                       // letters or symbols other than separators
	phoneUnreadable                 // phonenumbers cannot read the digits
	phoneNoCountryCode              // international, but no calling code matches
	phoneNoRegion                   // national form without a (known) country
	phoneImplausible                // too few or too many digits for any phone
	phoneInvalid                    // not a number of its country (phonenumbers.IsValidNumber)
	phoneNoSMS                      // valid, but a type that cannot receive SMS
)

const (
	// maxPhoneInput bounds what is scanned: the longest sensible input
	// (an IDD prefix, 15 digits and generous separators) is far shorter.
	maxPhoneInput = 100
	// A cell phone's national significant number has at least 5 digits
	// (St Helena, Ascension); E.164 allows at most 15 digits in all.
	minMobileNSN   = 5
	maxE164Digits  = 15
	maxTypedDigits = 20 // before the IDD or national prefix is removed
)

// parsePhone applies the rules to number, typed in national form for region
// or in international form (leading +). It returns the parsed number when
// phonenumbers could read it (also with phoneInvalid and phoneNoSMS, so
// that messages can name the country and the type).
func parsePhone(region, number string) (*phonenumbers.PhoneNumber, phoneProblem) {
	s := strings.TrimSpace(number)
	if s == "" {
		return nil, phoneEmpty
	}
	if len(s) > maxPhoneInput {
		return nil, phoneImplausible
	}
	digits, ok := phoneDigits(s)
	if !ok {
		return nil, phoneJunk
	}
	n := len(strings.TrimPrefix(digits, "+"))
	if n == 0 {
		return nil, phoneJunk
	}
	if n > maxTypedDigits {
		return nil, phoneImplausible
	}
	region = strings.ToUpper(strings.TrimSpace(region))
	if !phonenumbers.GetSupportedRegions()[region] {
		// Unknown or the non-geographic "001": only international input
		// can be read, and for it the region does not matter.
		region = ""
	}
	if region == "" && !strings.HasPrefix(digits, "+") {
		return nil, phoneNoRegion
	}
	// Only the digits go to phonenumbers: given the typed text it would also
	// read letters (1-800-FLOWERS), extensions ("ext. 5") and tel: URIs,
	// none of which an SMS can go to.
	num, err := phonenumbers.Parse(digits, region)
	switch {
	case errors.Is(err, phonenumbers.ErrInvalidCountryCode):
		return nil, phoneNoCountryCode
	case errors.Is(err, phonenumbers.ErrNumTooLong):
		return nil, phoneImplausible
	case err != nil:
		return nil, phoneUnreadable
	}
	nsn := phonenumbers.GetNationalSignificantNumber(num)
	if len(nsn) < minMobileNSN || len(strconv.Itoa(int(num.GetCountryCode())))+len(nsn) > maxE164Digits {
		return num, phoneImplausible
	}
	// IsValidNumber, not IsValidNumberForRegion: the select gives the
	// calling code, and several regions share one (Guernsey, Jersey and the
	// Isle of Man in +44; Canada in +1), so a Jersey mobile typed with
	// "United Kingdom" selected is right.
	if !phonenumbers.IsValidNumber(num) {
		return num, phoneInvalid
	}
	// Non-geographic numbers (+800, +881 satellite phones, ...) belong to
	// no country a user lives in and are a favourite of SMS pumping.
	if phonenumbers.GetRegionCodeForNumber(num) == nonGeographicRegion {
		return num, phoneNoSMS
	}
	switch phonenumbers.GetNumberType(num) {
	case phonenumbers.MOBILE, phonenumbers.FIXED_LINE_OR_MOBILE, phonenumbers.VOIP, phonenumbers.PERSONAL_NUMBER:
		return num, phoneOK
	case phonenumbers.UNKNOWN:
		return num, phoneInvalid
	default:
		// An allowlist: a type phonenumbers adds later is refused until
		// someone decides it can take a text. Premium-rate and shared-cost
		// numbers are how SMS pumping earns its money.
		return num, phoneNoSMS
	}
}

// nonGeographicRegion is phonenumbers' region of numbers that belong to no country.
const nonGeographicRegion = "001"

// phoneDigits keeps the digits of s and a leading +, dropping the
// separators people type (spaces, dots, dashes, brackets, slashes); ok is
// false when s holds anything else.
func phoneDigits(s string) (digits string, ok bool) {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' && i == 0:
			b.WriteRune(r)
		case unicode.IsSpace(r), unicode.Is(unicode.Pd, r), strings.ContainsRune(".()[]/", r):
		default:
			return "", false
		}
	}
	return b.String(), true
}

func isASCIIDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// ParsePhone parses a cell phone number typed in a form: in national form
// for region (the Country Code select, an ISO 3166-1 alpha-2 code such as
// "US"), or in international form starting with + (then region only picks
// the country a message names). Spaces, dots, dashes, brackets and slashes
// are fine. It returns the number in E.164 form ("+14155550123").
//
// Only numbers that can receive an SMS pass: mobile, fixed-line-or-mobile
// (the United States cannot tell them apart), VoIP and personal numbers.
// Landlines, toll-free, premium-rate, shared-cost, UAN, voicemail and pager
// numbers are refused; premium-rate refusal is part of the protection
// against SMS pumping fraud.
//
// Errors are *InvalidError with Field "phone" and a sentence safe to show
// on a page that says what to fix.
func ParsePhone(region, number string) (string, error) {
	num, problem := parsePhone(region, number)
	switch problem {
	case phoneOK:
		return phonenumbers.Format(num, phonenumbers.E164), nil
	case phoneEmpty:
		return "", invalid("phone", "Enter your cell phone number.")
	case phoneNoRegion:
		return "", invalid("phone", "Select your country in Country Code, or start the number with + and the country code.")
	case phoneNoCountryCode:
		return "", invalid("phone", "That number does not start with a known country code. Check the country code after the +.")
	case phoneInvalid:
		return "", invalid("phone", "That is not a valid cell phone number for %s. Check the number and the country code.", countryOf(num, region))
	case phoneNoSMS:
		return "", errNoSMS(num)
	default: // phoneJunk, phoneUnreadable, phoneImplausible
		if ex := exampleMobile(region); ex != "" {
			return "", invalid("phone", "That is not a phone number. Enter the digits of your cell phone number, e.g. %s.", ex)
		}
		return "", invalid("phone", "That is not a phone number. Enter the digits of your cell phone number.")
	}
}

// errNoSMS is the refusal of a valid number of a type no SMS reaches, in
// the words both ParsePhone and NormalizePhone use.
func errNoSMS(num *phonenumbers.PhoneNumber) error {
	kind := "a number of a kind that"
	if phonenumbers.GetRegionCodeForNumber(num) == nonGeographicRegion {
		return invalid("phone", "That number cannot receive our text messages (it is a satellite or international service number, not a country's). Enter a cell phone number.")
	}
	switch phonenumbers.GetNumberType(num) {
	case phonenumbers.FIXED_LINE:
		kind = "a landline number"
	case phonenumbers.TOLL_FREE:
		kind = "a toll-free number"
	case phonenumbers.PREMIUM_RATE:
		kind = "a premium-rate number"
	case phonenumbers.SHARED_COST:
		kind = "a shared-cost number"
	case phonenumbers.UAN:
		kind = "a company's universal access number"
	case phonenumbers.VOICEMAIL:
		kind = "a voicemail access number"
	case phonenumbers.PAGER:
		kind = "a pager number"
	}
	return invalid("phone", "That number cannot receive text messages (it is %s). Enter a cell phone number.", kind)
}

// exampleMobile is a mobile number of region in national form, for the
// "e.g." of a message; with no region, a United States one in international
// form, since without a country the number has to start with +.
func exampleMobile(region string) string {
	region = strings.ToUpper(strings.TrimSpace(region))
	format := phonenumbers.NATIONAL
	if !phonenumbers.GetSupportedRegions()[region] {
		region, format = "US", phonenumbers.INTERNATIONAL
	}
	ex := phonenumbers.GetExampleNumberForType(region, phonenumbers.MOBILE)
	if ex == nil {
		return ""
	}
	return phonenumbers.Format(ex, format)
}

// countryOf names the country of num for a message: the selected region
// when it shares the number's calling code, else the region phonenumbers
// places it in, else the calling code's main region.
func countryOf(num *phonenumbers.PhoneNumber, region string) string {
	code := int(num.GetCountryCode())
	region = strings.ToUpper(strings.TrimSpace(region))
	if region != "" && phonenumbers.GetCountryCodeForRegion(region) == code {
		return countryName(region)
	}
	if r := phonenumbers.GetRegionCodeForNumber(num); r != "" && r != nonGeoRegion {
		return countryName(r)
	}
	if r := phonenumbers.GetRegionCodeForCountryCode(code); r != nonGeoRegion && r != "ZZ" {
		return countryName(r)
	}
	return "+" + strconv.Itoa(code)
}

// PhoneRegion is the ISO 3166-1 alpha-2 region of an E.164 number ("US"),
// or "" when it has none (unparsable, or a global code such as +800).
func PhoneRegion(e164 string) string {
	num, err := phonenumbers.Parse(e164, "")
	if err != nil {
		return ""
	}
	r := phonenumbers.GetRegionCodeForNumber(num)
	if !phonenumbers.GetSupportedRegions()[r] {
		return ""
	}
	return r
}

// DisplayPhone formats an E.164 number for people, in international form
// ("+1 415-555-0123"); what it cannot parse it returns unchanged.
func DisplayPhone(e164 string) string {
	num, err := phonenumbers.Parse(e164, "")
	if err != nil {
		return e164
	}
	return phonenumbers.Format(num, phonenumbers.INTERNATIONAL)
}

// NationalPhone formats an E.164 number as it is dialled in its own
// country ("(415) 555-0123"), for the Cell Phone field next to its Country
// Code; what it cannot parse it returns unchanged.
func NationalPhone(e164 string) string {
	num, err := phonenumbers.Parse(e164, "")
	if err != nil {
		return e164
	}
	return phonenumbers.Format(num, phonenumbers.NATIONAL)
}

// MaskedPhone shows an E.164 number the way "We sent a code to ..." does:
// the calling code and the grouping of the international form, every digit
// of the national number hidden ("•") but the last four (the last two when
// the national number has fewer than 7 digits, so that most stay hidden):
// "+14155550123" becomes "+1 ••• ••• 0123". Someone who looks over a
// shoulder learns which phone, not the number.
func MaskedPhone(e164 string) string {
	num, err := phonenumbers.Parse(e164, "")
	if err != nil {
		// Not a number we stored; still never show it whole.
		digits, _ := phoneDigits(e164)
		return maskGroups("", []string{strings.TrimPrefix(digits, "+")}, 2)
	}
	prefix := "+" + strconv.Itoa(int(num.GetCountryCode()))
	intl := strings.TrimPrefix(phonenumbers.Format(num, phonenumbers.INTERNATIONAL), prefix)
	groups := strings.FieldsFunc(intl, func(r rune) bool { return r < '0' || r > '9' })
	keep := 4
	if len(phonenumbers.GetNationalSignificantNumber(num)) < 7 {
		keep = 2
	}
	return maskGroups(prefix, groups, keep)
}

// maskGroups replaces all but the last keep digits of groups with "•" and
// joins prefix and groups with spaces.
func maskGroups(prefix string, groups []string, keep int) string {
	total := 0
	for _, g := range groups {
		total += len(g)
	}
	parts := make([]string, 0, len(groups)+1)
	if prefix != "" {
		parts = append(parts, prefix)
	}
	seen := 0
	for _, g := range groups {
		var b strings.Builder
		for i := 0; i < len(g); i++ {
			if seen < total-keep {
				b.WriteString("•")
			} else {
				b.WriteByte(g[i])
			}
			seen++
		}
		if b.Len() > 0 {
			parts = append(parts, b.String())
		}
	}
	return strings.Join(parts, " ")
}

// Country is one entry of the Country Code select: "United States (+1)".
type Country struct {
	Region      string // ISO 3166-1 alpha-2, "US"
	Name        string // English, "United States"
	CallingCode int    // 1
}

// allCountries is every region phonenumbers supports, sorted by English
// name. Names and collation cost a few milliseconds, so they are computed
// once; the result is shared and never modified.
var allCountries = sync.OnceValue(func() []Country {
	names := display.English.Regions()
	var list []Country
	for r := range phonenumbers.GetSupportedRegions() {
		if r == nonGeoRegion {
			continue
		}
		name := r
		if reg, err := language.ParseRegion(r); err == nil {
			if n := names.Name(reg); n != "" {
				name = n
			}
		}
		list = append(list, Country{Region: r, Name: name, CallingCode: phonenumbers.GetCountryCodeForRegion(r)})
	}
	// A collator puts "Åland Islands" next to "Albania", not after "Zimbabwe".
	coll := collate.New(language.English)
	slices.SortFunc(list, func(a, b Country) int {
		if c := coll.CompareString(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Region, b.Region)
	})
	return list
})

// countryName is the English name of an ISO region, or the code itself.
func countryName(region string) string {
	for _, c := range allCountries() {
		if c.Region == region {
			return c.Name
		}
	}
	return region
}

// Countries lists the regions phonenumbers supports that p allows, sorted
// by English name, each with its calling code, for the Country Code
// select. The slice is the caller's.
func Countries(p *PhonePolicy) []Country {
	all := allCountries()
	out := make([]Country, 0, len(all))
	for _, c := range all {
		if p.AllowsRegion(c.Region) {
			out = append(out, c)
		}
	}
	return out
}

// maxAcceptLanguage bounds the header RegionFromAcceptLanguage parses; real
// browsers send a few dozen bytes.
const maxAcceptLanguage = 1024

// RegionFromAcceptLanguage picks a default for the Country Code select from
// an Accept-Language header: the region of the most preferred locale that
// has one ("en-US,en;q=0.9" gives "US", "de-CH" "CH"), guessed for a bare
// language ("fr" gives "FR"), and only a region phonenumbers supports. It
// returns "" for none, for a header it cannot parse and for one longer than
// 1 KiB.
func RegionFromAcceptLanguage(header string) string {
	if header == "" || len(header) > maxAcceptLanguage {
		return ""
	}
	tags, _, err := language.ParseAcceptLanguage(header)
	if err != nil {
		return ""
	}
	for _, t := range tags {
		region, conf := t.Region()
		base, _, _ := t.Raw()
		// "*" and "und" come back as "und", whose guess (US) says nothing
		// about the browser; "und-CH" does.
		if conf == language.No || base.String() == "und" && conf != language.Exact {
			continue
		}
		if r := region.String(); region.IsCountry() && phonenumbers.GetSupportedRegions()[r] {
			return r
		}
	}
	return ""
}

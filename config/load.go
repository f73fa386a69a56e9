package config

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
)

// EnvPrefix starts every environment variable that sets a key.
const EnvPrefix = "IDP_"

// Environment variables with the prefix that are not configuration keys.
var nonKeyEnv = []string{"IDP_CONFIG"}

// Source says where the configuration comes from.
type Source struct {
	File    string   // YAML file; empty for none
	Environ []string // KEY=VALUE pairs, normally os.Environ()
}

// Load reads the defaults, then the file, then IDP_* variables, and
// validates the result. Every unknown key, unknown IDP_* variable and bad
// value is reported in one error, one per line, each naming its key.
func Load(src Source) (*Config, error) {
	v := viper.New()
	def := Defaults()
	keys := Keys()
	defaults := flatten(reflect.ValueOf(def), "")
	for _, k := range keys {
		v.SetDefault(k, defaults[k])
	}

	var errs []error
	if src.File != "" {
		v.SetConfigFile(src.File)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("configuration file %s does not exist", src.File)
			}
			return nil, fmt.Errorf("configuration file %s: %w", src.File, err)
		}
	}

	for _, kv := range src.Environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) || slices.Contains(nonKeyEnv, name) ||
			strings.HasPrefix(name, "IDP_TEST_") || kubernetesServiceEnv(name) {
			continue
		}
		key := envKey(name, keys)
		switch {
		case name == "IDP_CLIENTS":
			errs = append(errs, errors.New("IDP_CLIENTS: clients are declared in the configuration file (or with `idp client add`), not in the environment"))
		case key == "":
			errs = append(errs, fmt.Errorf("%s: not a configuration key (environment variables are IDP_ and the key in upper case with _ for ., e.g. IDP_REDIS_URL)", name))
		default:
			v.Set(key, value)
		}
	}

	cfg := def
	cfg.Clients = nil
	err := v.Unmarshal(&cfg, func(dc *mapstructure.DecoderConfig) {
		dc.ErrorUnused = true
		dc.ZeroFields = true
		dc.DecodeHook = mapstructure.ComposeDecodeHookFunc(
			durationNeedsUnit,
			numberFits,
			mapstructure.StringToTimeDurationHookFunc(),
			mapstructure.StringToSliceHookFunc(","),
		)
	})
	if err != nil {
		errs = append(errs, decodeErrors(err)...)
	}
	// Validate even after decoding errors so that every problem is reported
	// in one go; a field that failed to decode keeps its default.
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &cfg, nil
}

// decodeErrors splits mapstructure's aggregated error into one per key and
// words unknown keys plainly. It walks the error's tree rather than its
// text, so that a key holding a line break stays on its own line.
func decodeErrors(err error) []error {
	var out []error
	var walk func(error)
	walk = func(err error) {
		var de *mapstructure.DecodeError
		switch e := err.(type) {
		case interface{ Unwrap() []error }:
			for _, sub := range e.Unwrap() {
				walk(sub)
			}
			return
		case *mapstructure.DecodeError:
			de = e
		case interface{ Unwrap() error }:
			if sub := e.Unwrap(); sub != nil {
				walk(sub)
				return
			}
		}
		if de == nil {
			out = append(out, errors.New(oneLine(err.Error())))
			return
		}
		msg := de.Unwrap().Error()
		keys, ok := strings.CutPrefix(msg, "has invalid keys: ")
		if !ok {
			out = append(out, fmt.Errorf("'%s' %s", oneLine(de.Name()), oneLine(msg)))
			return
		}
		parent := de.Name()
		if parent == reflect.TypeFor[Config]().String() {
			parent = "" // mapstructure names the top level by its type, config.Config
		}
		for _, k := range strings.Split(keys, ", ") {
			if parent != "" {
				k = parent + "." + k
			}
			out = append(out, fmt.Errorf("%s: unknown configuration key", quoteKey(k)))
		}
	}
	walk(err)
	if len(out) == 0 {
		out = append(out, errors.New(oneLine(err.Error())))
	}
	return out
}

// quoteKey quotes a key written with unprintable characters (line breaks,
// control characters), so that it reads as one key on one line.
func quoteKey(k string) string {
	if strings.IndexFunc(k, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return strconv.Quote(k)
	}
	return k
}

// oneLine keeps an error's text on one line of the joined error.
func oneLine(s string) string {
	return strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(s)
}

// Keys lists every scalar configuration key (not the clients list), e.g.
// "sms.twilio.api_url".
func Keys() []string {
	var keys []string
	for k := range flatten(reflect.ValueOf(Defaults()), "") {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// EnvName is the environment variable that sets key.
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

func envKey(name string, keys []string) string {
	for _, k := range keys {
		if EnvName(k) == name {
			return k
		}
	}
	return ""
}

// flatten maps each scalar key under v to its value.
func flatten(v reflect.Value, prefix string) map[string]any {
	out := map[string]any{}
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("mapstructure")
		if tag == "" || !f.IsExported() {
			continue
		}
		key := prefix + tag
		fv := v.Field(i)
		switch fv.Kind() {
		case reflect.Struct:
			for k, val := range flatten(fv, key+".") {
				out[k] = val
			}
		case reflect.Slice:
			// Lists of strings are keys (IDP_X=a,b); lists of structs
			// (clients) are file-only.
			if fv.Type().Elem().Kind() == reflect.String {
				out[key] = fv.Interface()
			}
		default:
			out[key] = fv.Interface()
		}
	}
	return out
}

// kubernetesServiceEnv reports whether name is one of the variables
// Kubernetes sets for a Service named "idp" (IDP_SERVICE_HOST,
// IDP_SERVICE_PORT, IDP_PORT, IDP_PORT_8080_TCP_ADDR, ...): not keys, and
// no reason to refuse to start.
func kubernetesServiceEnv(name string) bool {
	return strings.HasPrefix(name, "IDP_SERVICE_HOST") || strings.HasPrefix(name, "IDP_SERVICE_PORT") ||
		name == "IDP_PORT" || strings.HasPrefix(name, "IDP_PORT_")
}

// FromEnvironment is the usual source: file (may be empty) and os.Environ.
func FromEnvironment(file string) Source {
	if file == "" {
		file = os.Getenv("IDP_CONFIG")
	}
	return Source{File: file, Environ: os.Environ()}
}

// durationNeedsUnit refuses a bare number for a duration key: YAML's 3600
// would otherwise be 3600 nanoseconds, not the hour that was meant.
func durationNeedsUnit(from, to reflect.Type, data any) (any, error) {
	if to != reflect.TypeFor[time.Duration]() || from == to {
		return data, nil
	}
	switch from.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return nil, fmt.Errorf("must be a duration with a unit, such as 1h or 30m, got the bare number %v", data)
	}
	return data, nil
}

// numberFits refuses a YAML number that the key's type cannot hold as
// written: mapstructure would wrap 300 into a uint8's 44 and -1 into a
// uint32's 4294967295, and cut 12.7 to 12, all without a word. (IDP_*
// variables are strings, which strconv already checks.)
func numberFits(from, to reflect.Type, data any) (any, error) {
	if to == reflect.TypeFor[time.Duration]() {
		return data, nil // durationNeedsUnit's
	}
	var lo, hi float64 // the range of to, as float64 (inexact near 2^63, hence the checks below)
	signed := false
	switch to.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		bits := to.Bits()
		lo, hi, signed = -math.Ldexp(1, bits-1), math.Ldexp(1, bits-1)-1, true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		lo, hi = 0, math.Ldexp(1, to.Bits())-1
	default:
		return data, nil
	}
	v := reflect.ValueOf(data)
	fits := true
	switch {
	case v.CanInt():
		n := v.Int()
		fits = signed && !reflect.Zero(to).OverflowInt(n) || !signed && n >= 0 && !reflect.Zero(to).OverflowUint(uint64(n))
	case v.CanUint():
		n := v.Uint()
		fits = signed && n <= math.MaxInt64 && !reflect.Zero(to).OverflowInt(int64(n)) || !signed && !reflect.Zero(to).OverflowUint(n)
	case v.CanFloat():
		x := v.Float()
		if x != math.Trunc(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("must be a whole number, got %v", data)
		}
		fits = x >= lo && x < hi+1
	default:
		return data, nil // strings and the rest: the decoder's own checks
	}
	if !fits {
		return nil, fmt.Errorf("must be a whole number from %.0f to %.0f, got %v", lo, hi, data)
	}
	return data, nil
}

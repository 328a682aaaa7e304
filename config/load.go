package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// DefaultFile is the config file Load reads when --config is not given and
// the file exists, relative to the working directory.
const DefaultFile = "configs/edge.yaml"

// EnvPrefix starts the environment form of every key: sse.heartbeat is read
// from EDGE_SSE_HEARTBEAT.
const EnvPrefix = "EDGE"

// ErrHelp is returned by Load when the arguments ask for help (-h, --help).
// main then prints Usage to stdout and exits 0. It is pflag.ErrHelp itself,
// so errors.Is matches either.
var ErrHelp = pflag.ErrHelp

// Error is a configuration that cannot be used: a bad flag, an unreadable
// or unknown-key file, a value that does not parse or does not make sense.
// Load returns one *Error, or several joined with errors.Join; errors.As
// finds the first.
//
// main prints any Load error other than ErrHelp and exits with code 2, the
// usage-error code of the flag package, so scripts can tell a bad
// configuration from a runtime failure (exit 1).
type Error struct {
	// Key is the dotted key at fault ("sse.heartbeat",
	// "retention.rules[0].pattern"), or "" when no key applies (an
	// unreadable config file, an unknown flag).
	Key string
	// Err says what is wrong. It never contains a secret's value.
	Err error
}

// Error implements error: "config: sse.heartbeat: time: invalid duration".
func (e *Error) Error() string {
	if e.Key == "" {
		return "config: " + e.Err.Error()
	}
	return "config: " + e.Key + ": " + e.Err.Error()
}

// Unwrap returns e.Err.
func (e *Error) Unwrap() error { return e.Err }

// Load builds the configuration from args (the command line without the
// program name, i.e. os.Args[1:]), the environment and a config file, then
// validates it. Precedence, highest first: flags, EDGE_* environment
// variables, the file, defaults.
//
// The file is --config PATH if given (a missing file is an error), else
// DefaultFile if it exists, else none; --config "" means none. Keys in the
// file that Config does not have are errors, so a typo is not silently
// ignored. List keys take comma-separated values in the environment and in
// flags; retention.rules takes JSON there. An empty environment variable
// counts as unset.
//
// Load prints nothing. On -h/--help it returns ErrHelp; every other error
// is an *Error (or several joined) for main to print before exiting 2.
// Each call uses its own viper instance, so calls are independent.
func Load(args []string) (*Config, error) {
	fields := keyFields()
	flags := newFlagSet(fields)
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil, ErrHelp
		}
		return nil, flagError(err)
	}
	if flags.NArg() > 0 {
		return nil, &Error{Err: fmt.Errorf("unexpected argument %q (all settings are --key=value flags)", flags.Arg(0))}
	}

	v := viper.New()
	def := reflect.ValueOf(defaults())
	for _, f := range fields {
		// SetDefault on every key, not just those with a non-zero default:
		// Unmarshal only sees keys viper knows of, so a key set solely in
		// the environment would be ignored otherwise (viper #761).
		v.SetDefault(f.key, def.FieldByIndex(f.index).Interface())
		// Bound one by one rather than with BindPFlags so --config does not
		// become a key (UnmarshalExact would call it unknown).
		if err := v.BindPFlag(f.key, flags.Lookup(f.key)); err != nil {
			return nil, &Error{Key: f.key, Err: err}
		}
	}
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()

	file, err := configFile(flags)
	if err != nil {
		return nil, err
	}
	if file != "" {
		if err := readFile(v, file, fields); err != nil {
			return nil, err
		}
	}

	var c Config
	if err := v.UnmarshalExact(&c, viper.DecodeHook(decodeHook())); err != nil {
		return nil, decodeError(err)
	}
	c.File = file
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Usage writes the command-line help: every flag with its default.
func Usage(w io.Writer) {
	flags := newFlagSet(keyFields())
	fmt.Fprintf(w, `Usage: edge [flags]

Every flag is a config key. Precedence: flags, then %s_* environment
variables (dots become underscores: --sse.heartbeat is %s_SSE_HEARTBEAT),
then the config file (--config, else ./%s if present), then defaults.
List values are comma-separated.

Flags:
%s`, EnvPrefix, EnvPrefix, DefaultFile, flags.FlagUsages())
}

// configFile picks the file to read, per Load's rules.
func configFile(flags *pflag.FlagSet) (string, error) {
	if f := flags.Lookup("config"); f.Changed {
		return f.Value.String(), nil
	}
	switch _, err := os.Stat(DefaultFile); {
	case err == nil:
		return DefaultFile, nil
	case errors.Is(err, fs.ErrNotExist):
		return "", nil
	default:
		return "", &Error{Err: fmt.Errorf("config file: %w", err)}
	}
}

// readFile reads file into v and refuses keys Config does not have. The
// check is done here, not left to UnmarshalExact alone, so the error names
// the full key ("http.adr") and the file rather than a parent map.
func readFile(v *viper.Viper, file string, fields []field) error {
	v.SetConfigFile(file)
	if filepath.Ext(file) == "" {
		v.SetConfigType("yaml")
	}
	// A missing --config file is an fs.PathError here, not viper's
	// ConfigFileNotFoundError; either way it is an error.
	if err := v.ReadInConfig(); err != nil {
		return &Error{Err: fmt.Errorf("config file %s: %w", file, err)}
	}
	known := make(map[string]bool, len(fields))
	for _, f := range fields {
		known[f.key] = true
	}
	// Only the file can bring unknown keys: defaults and flags come from
	// fields, and AutomaticEnv is only consulted for known keys.
	keys := v.AllKeys()
	slices.Sort(keys)
	var errs []error
	for _, k := range keys {
		if !known[k] {
			errs = append(errs, &Error{Key: k, Err: fmt.Errorf("unknown key in %s", file)})
		}
	}
	return errors.Join(errs...)
}

// flagError turns a pflag error into an *Error naming the flag's key.
func flagError(err error) error {
	var iv *pflag.InvalidValueError
	if errors.As(err, &iv) {
		return &Error{Key: iv.GetFlag().Name, Err: fmt.Errorf("invalid value %q: %w", iv.GetValue(), iv.Unwrap())}
	}
	return &Error{Err: err}
}

// decodeError turns mapstructure's nested, joined errors into one *Error
// per key.
func decodeError(err error) error {
	var out []error
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range e.Unwrap() {
				walk(e)
			}
		case *mapstructure.DecodeError:
			inner := e.Unwrap()
			var nested *mapstructure.DecodeError
			if _, joined := inner.(interface{ Unwrap() []error }); joined || errors.As(inner, &nested) {
				walk(inner)
				return
			}
			out = append(out, &Error{Key: e.Name(), Err: inner})
		default:
			if u := errors.Unwrap(err); u != nil {
				walk(u)
				return
			}
			out = append(out, &Error{Err: err})
		}
	}
	walk(err)
	return errors.Join(out...)
}

// decodeHook converts the strings that environment variables and flags
// produce, and YAML scalars, into Config's field types.
func decodeHook() mapstructure.DecodeHookFunc {
	return mapstructure.ComposeDecodeHookFunc(durationHook, listHook)
}

var durationType = reflect.TypeFor[time.Duration]()

// durationHook parses durations. A bare number is refused (except 0): YAML
// "heartbeat: 15" would otherwise be 15 nanoseconds.
func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != durationType || from == durationType {
		return data, nil
	}
	switch from.Kind() {
	case reflect.String:
		return time.ParseDuration(strings.TrimSpace(reflect.ValueOf(data).String()))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		if reflect.ValueOf(data).IsZero() {
			return time.Duration(0), nil
		}
		return nil, fmt.Errorf("duration %v has no unit (write e.g. \"15s\", \"5m\")", data)
	}
	return data, nil
}

// listHook splits a comma-separated string into a []string, and decodes a
// JSON string into any other slice (retention.rules from env or flags).
func listHook(from, to reflect.Type, data any) (any, error) {
	if from.Kind() != reflect.String || to.Kind() != reflect.Slice {
		return data, nil
	}
	s := strings.TrimSpace(reflect.ValueOf(data).String())
	if to.Elem().Kind() == reflect.String {
		if s == "" {
			return []string(nil), nil
		}
		return strings.Split(s, ","), nil
	}
	if s == "" {
		return []any(nil), nil
	}
	var list []any
	if err := json.Unmarshal([]byte(s), &list); err != nil {
		return nil, fmt.Errorf("want a JSON list: %w", err)
	}
	return list, nil
}

// field is one config key, found by walking Config's mapstructure tags.
type field struct {
	key    string // dotted, e.g. "sse.heartbeat"
	index  []int  // for reflect.Value.FieldByIndex on a Config
	typ    reflect.Type
	usage  string // flag help
	secret bool   // redacted in logs
}

// keyFields lists every key of Config, in declaration order. Deriving keys
// from the struct means a field added to Config automatically gets a
// default, an environment variable and a flag.
func keyFields() []field {
	var out []field
	var walk func(t reflect.Type, prefix string, index []int)
	walk = func(t reflect.Type, prefix string, index []int) {
		for i := range t.NumField() {
			sf := t.Field(i)
			name, _, _ := strings.Cut(sf.Tag.Get("mapstructure"), ",")
			if name == "" || name == "-" {
				continue
			}
			idx := append(slices.Clone(index), i)
			if sf.Type.Kind() == reflect.Struct && sf.Type != durationType {
				walk(sf.Type, prefix+name+".", idx)
				continue
			}
			out = append(out, field{
				key:    prefix + name,
				index:  idx,
				typ:    sf.Type,
				usage:  sf.Tag.Get("usage"),
				secret: sf.Tag.Get("secret") == "true",
			})
		}
	}
	walk(reflect.TypeFor[Config](), "", nil)
	return out
}

// newFlagSet returns a flag per key, named after it, with its default, plus
// --config. It never prints or exits: Load reports, main decides.
func newFlagSet(fields []field) *pflag.FlagSet {
	flags := pflag.NewFlagSet("edge", pflag.ContinueOnError)
	flags.SetOutput(io.Discard)
	flags.Usage = func() {}
	flags.SortFlags = false // declaration order keeps sections together
	flags.String("config", "", "config file (default ./"+DefaultFile+" if present; \"\" for none)")
	def := reflect.ValueOf(defaults())
	for _, f := range fields {
		d := def.FieldByIndex(f.index)
		switch {
		case f.typ == durationType:
			flags.Duration(f.key, time.Duration(d.Int()), f.usage)
		case f.typ.Kind() == reflect.String:
			flags.String(f.key, d.String(), f.usage)
		case f.typ.Kind() == reflect.Bool:
			flags.Bool(f.key, d.Bool(), f.usage)
		case f.typ.Kind() == reflect.Int:
			flags.Int(f.key, int(d.Int()), f.usage)
		case f.typ.Kind() == reflect.Int64:
			flags.Int64(f.key, d.Int(), f.usage)
		case f.typ.Kind() == reflect.Float64:
			flags.Float64(f.key, d.Float(), f.usage)
		case f.typ == reflect.TypeFor[[]string]():
			flags.StringSlice(f.key, d.Interface().([]string), f.usage)
		case f.typ.Kind() == reflect.Slice:
			// Lists of structs (retention.rules) come as JSON, which
			// listHook decodes; the default is documented in the usage.
			flags.String(f.key, "", f.usage)
		default:
			panic("config: no flag type for key " + f.key + " of type " + f.typ.String())
		}
	}
	return flags
}

package main

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/simgate/simgate/core/amf"
	"github.com/simgate/simgate/core/smf"
	"github.com/simgate/simgate/core/udm"
	"github.com/simgate/simgate/endorse"
	"github.com/simgate/simgate/gtp/upf"
	"github.com/simgate/simgate/sim/ran"
)

// Config is simgate.yaml. Each section belongs to the package that uses it;
// every leaf is a YAML key (its path, e.g. endorse.issuer) and a flag of the
// same name on the commands that use that section. Each field carries a doc
// tag: `simgate config show` prints the file with those as comments.
type Config struct {
	DataDir string         `yaml:"data_dir" doc:"directory holding everything that must persist (subscribers, SQNs, keys)"`
	Log     LogConfig      `yaml:"log" doc:"logging"`
	Endorse endorse.Config `yaml:"endorse" doc:"the Endorse token issuer"`
	AMF     amf.Config     `yaml:"amf" doc:"the AMF: PLMN, N2, NAS security (simgate core, up)"`
	SMF     smf.Config     `yaml:"smf" doc:"the SMF: data networks, UE address pools, N4 (simgate core, up)"`
	UDM     udm.Config     `yaml:"udm" doc:"the UDM: authentication (simgate core, up)"`
	UPF     upf.Config     `yaml:"upf" doc:"the UPF: N4 and N3 (simgate upf, up)"`
	RAN     ran.Config     `yaml:"ran" doc:"the simulated gNBs and UEs (simgate ran)"`
	HTTP    HTTPConfig     `yaml:"http" doc:"host HTTP endpoint: Endorse public keys and health checks (simgate core, up)"`
	Up      UpConfig       `yaml:"up" doc:"simgate up: the test SIMs provisioned on first start"`
	Ops     OpsConfig      `yaml:"ops" doc:"metrics and health of simgate upf and simgate ran"`
}

// LogConfig says how the process logs.
type LogConfig struct {
	Level  string `yaml:"level" doc:"log level: debug, info, warn or error"`
	Format string `yaml:"format" doc:"log format: text or json"`
}

// DefaultConfig is the configuration with nothing set.
func DefaultConfig() Config {
	return Config{
		DataDir: "./simgate-data",
		Log:     LogConfig{Level: "info", Format: "text"},
		Endorse: endorse.DefaultConfig(),
		AMF:     amf.DefaultConfig(),
		SMF:     smf.DefaultConfig(),
		UDM:     udm.DefaultConfig(),
		UPF:     upf.DefaultConfig(),
		RAN:     ran.DefaultConfig(),
		HTTP:    HTTPConfig{Addr: "127.0.0.1:8080"},
		Up:      UpConfig{TestSIMs: defaultTestSIMs, FirstIMSI: defaultFirstIMSI, Seed: defaultSeed},
	}
}

// Validate checks every section; errors name the key.
func (c Config) Validate() error {
	var errs []error
	if strings.TrimSpace(c.DataDir) == "" {
		errs = append(errs, errors.New("config: data_dir: must not be empty"))
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.Log.Level)); err != nil {
		errs = append(errs, fmt.Errorf("config: log.level: %q is not one of debug, info, warn, error", c.Log.Level))
	}
	if f := strings.ToLower(c.Log.Format); f != "text" && f != "json" {
		errs = append(errs, fmt.Errorf("config: log.format: %q is not text or json", c.Log.Format))
	}
	for _, v := range c.sections() {
		if err := v.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("config: %w", err))
		}
	}
	return joinOneLine(errs)
}

// joinOneLine joins errors into one line, so the CLI prints one line.
func joinOneLine(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return errors.New(strings.Join(msgs, "; "))
}

// validator is a section that checks itself.
type validator interface{ Validate() error }

// sections lists the package sections that validate themselves.
func (c Config) sections() []validator {
	var out []validator
	rv := reflect.ValueOf(c)
	for i := 0; i < rv.NumField(); i++ {
		if v, ok := rv.Field(i).Interface().(validator); ok {
			out = append(out, v)
		}
	}
	return out
}

// decodeConfig reads YAML into c strictly: an unknown key or a value of the
// wrong kind is an error naming the key and the line.
func decodeConfig(name string, b []byte, c *Config) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("config: %s: %w", name, err)
	}
	if len(doc.Content) == 0 {
		return nil // empty file
	}
	if err := decodeNode(doc.Content[0], reflect.ValueOf(c).Elem(), ""); err != nil {
		return fmt.Errorf("config: %s: %w", name, err)
	}
	return nil
}

func decodeNode(n *yaml.Node, v reflect.Value, path string) error {
	if isLeaf(v) {
		return decodeLeaf(n, v, path)
	}
	if v.Kind() != reflect.Struct {
		return fmt.Errorf("%s: unsupported kind %s", path, v.Kind())
	}
	if n.Kind != yaml.MappingNode {
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return nil
		}
		return fmt.Errorf("line %d: %s: want a mapping of keys", n.Line, orRoot(path))
	}
	fields := yamlFields(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key := join(path, k.Value)
		idx, ok := fields[k.Value]
		if !ok {
			return fmt.Errorf("line %d: unknown key %q", k.Line, key)
		}
		if seen[k.Value] {
			return fmt.Errorf("line %d: key %q given twice", k.Line, key)
		}
		seen[k.Value] = true
		if err := decodeNode(val, v.Field(idx), key); err != nil {
			return err
		}
	}
	return nil
}

func decodeLeaf(n *yaml.Node, v reflect.Value, path string) error {
	if v.Kind() == reflect.Slice {
		var items []string
		switch n.Kind {
		case yaml.SequenceNode:
			for _, it := range n.Content {
				if it.Kind != yaml.ScalarNode {
					return fmt.Errorf("line %d: %s: want a list of values", it.Line, path)
				}
				items = append(items, it.Value)
			}
		case yaml.ScalarNode:
			if n.Tag != "!!null" && n.Value != "" {
				items = splitList(n.Value)
			}
		default:
			return fmt.Errorf("line %d: %s: want a list of values", n.Line, path)
		}
		return setList(v, items, path)
	}
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: %s: want a single value", n.Line, path)
	}
	if err := setLeaf(v, n.Value); err != nil {
		return fmt.Errorf("line %d: %s: %w", n.Line, path, err)
	}
	return nil
}

var durationType = reflect.TypeOf(time.Duration(0))

func isLeaf(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint64,
		reflect.Uint32, reflect.Uint16, reflect.Uint8, reflect.Float64:
		return true
	case reflect.Slice:
		return v.Type().Elem().Kind() == reflect.String
	}
	return false
}

// setLeaf parses s into the leaf v.
func setLeaf(v reflect.Value, s string) error {
	switch {
	case v.Type() == durationType:
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("invalid duration %q (want e.g. 500ms, 2s, 1m)", s)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("invalid value %q: want true or false", s)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32:
		i, err := strconv.ParseInt(s, 0, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("invalid value %q: want an integer", s)
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint64, reflect.Uint32, reflect.Uint16, reflect.Uint8:
		u, err := strconv.ParseUint(s, 0, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("invalid value %q: want a non-negative integer below 2^%d", s, v.Type().Bits())
		}
		v.SetUint(u)
	case reflect.Float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("invalid value %q: want a number", s)
		}
		v.SetFloat(f)
	default:
		return fmt.Errorf("unsupported kind %s", v.Kind())
	}
	return nil
}

func setList(v reflect.Value, items []string, path string) error {
	if len(items) == 0 {
		v.Set(reflect.Zero(v.Type()))
		return nil
	}
	out := reflect.MakeSlice(v.Type(), 0, len(items))
	for _, it := range items {
		e := reflect.New(v.Type().Elem()).Elem()
		if err := setLeaf(e, it); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		out = reflect.Append(out, e)
	}
	v.Set(out)
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// yamlFields maps YAML key -> field index.
func yamlFields(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		if name := yamlName(t.Field(i)); name != "" {
			m[name] = i
		}
	}
	return m
}

func yamlName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	tag := f.Tag.Get("yaml")
	if tag == "-" {
		return ""
	}
	if name, _, _ := strings.Cut(tag, ","); name != "" {
		return name
	}
	return strings.ToLower(f.Name)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orRoot(path string) string {
	if path == "" {
		return "the top level"
	}
	return path
}

// leaf is one configuration value: its YAML path, doc and place.
type leaf struct {
	path string
	doc  string
	v    reflect.Value
}

// leaves walks v (a struct) and returns its leaves in declaration order.
func leaves(v reflect.Value, path string) []leaf {
	var out []leaf
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := yamlName(f)
		if name == "" {
			continue
		}
		fv := v.Field(i)
		p := join(path, name)
		if isLeaf(fv) {
			out = append(out, leaf{path: p, doc: f.Tag.Get("doc"), v: fv})
		} else if fv.Kind() == reflect.Struct {
			out = append(out, leaves(fv, p)...)
		}
	}
	return out
}

// configFlags turns configuration leaves into flags named by their YAML path
// (data_dir is --data-dir). Values given on the command line are applied
// after the file, so they win.
type configFlags struct {
	cfg *Config
	set []flagValue // in the order given on the command line
}

type flagValue struct {
	path string
	val  string
}

func newConfigFlags(cfg *Config) *configFlags { return &configFlags{cfg: cfg} }

func flagName(path string) string {
	if path == "data_dir" {
		return "data-dir"
	}
	return path
}

// add registers a flag for every leaf under the given top-level keys.
func (cf *configFlags) add(fs *pflag.FlagSet, sections ...string) {
	for _, l := range leaves(reflect.ValueOf(cf.cfg).Elem(), "") {
		top, _, _ := strings.Cut(l.path, ".")
		for _, s := range sections {
			if s == top && fs.Lookup(flagName(l.path)) == nil {
				fs.Var(&leafFlag{cf: cf, l: l}, flagName(l.path), l.doc)
				if l.v.Kind() == reflect.Bool {
					fs.Lookup(flagName(l.path)).NoOptDefVal = "true"
				}
			}
		}
	}
}

// apply sets every value given by flag onto the configuration.
func (cf *configFlags) apply() error {
	byPath := map[string]leaf{}
	for _, l := range leaves(reflect.ValueOf(cf.cfg).Elem(), "") {
		byPath[l.path] = l
	}
	for _, fv := range cf.set {
		l := byPath[fv.path]
		var err error
		if l.v.Kind() == reflect.Slice {
			err = setList(l.v, splitList(fv.val), fv.path)
		} else if err = setLeaf(l.v, fv.val); err != nil {
			err = fmt.Errorf("%s: %w", fv.path, err)
		}
		if err != nil {
			return fmt.Errorf("config: flag --%s: %w", flagName(fv.path), err)
		}
	}
	return nil
}

// leafFlag is a pflag.Value that records the value for apply.
type leafFlag struct {
	cf *configFlags
	l  leaf
}

func (f *leafFlag) String() string { return formatLeaf(f.l.v) }

func (f *leafFlag) Set(s string) error {
	// Parse now into a scratch value so a bad flag fails at parse time.
	scratch := reflect.New(f.l.v.Type()).Elem()
	var err error
	if scratch.Kind() == reflect.Slice {
		err = setList(scratch, splitList(s), f.l.path)
	} else {
		err = setLeaf(scratch, s)
	}
	if err != nil {
		return err
	}
	f.cf.set = append(f.cf.set, flagValue{path: f.l.path, val: s})
	return nil
}

func (f *leafFlag) Type() string {
	switch {
	case f.l.v.Type() == durationType:
		return "duration"
	case f.l.v.Kind() == reflect.Slice:
		return "list"
	case f.l.v.Kind() == reflect.Bool:
		return "bool"
	case f.l.v.Kind() == reflect.String:
		return "string"
	}
	return "number"
}

func formatLeaf(v reflect.Value) string {
	if v.Type() == durationType {
		return time.Duration(v.Int()).String()
	}
	if v.Kind() == reflect.Slice {
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = fmt.Sprint(v.Index(i).Interface())
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v.Interface())
}

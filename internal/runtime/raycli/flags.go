package raycli

import (
	"errors"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

type flagKind int

const (
	boolFlag flagKind = iota
	valueFlag
	// multiFlag is a value flag that may be repeated (--filter a --filter b).
	multiFlag
)

// completion is what the shell offers for a flag's value.
type completion int

const (
	completeNothing completion = iota
	completeFiles
	completeDirs
)

// flagSpec declares a flag a command understands. Names are without the
// leading dashes; short is a one-letter alias ("f" for -f). A back-quoted
// word in usage names the value in --help ("`port`" shows "--port port").
type flagSpec struct {
	name     string
	kind     flagKind
	short    string
	usage    string
	complete completion
}

// compatUsage marks flags that Ray's CLI has and KubeRay or users pass, but
// that change nothing in this runtime. Help says so rather than hiding them.
const compatUsage = "Accepted for compatibility with Ray; has no effect in this runtime"

// compat declares a flag accepted for compatibility only.
func compat(name string, kind flagKind) flagSpec {
	usage := compatUsage
	if kind == valueFlag {
		usage += " (any `value`)"
	}
	return flagSpec{name: name, kind: kind, usage: usage}
}

// loggingFlags are Ray's logging options, which every command accepts.
var loggingFlags = []flagSpec{
	{name: "verbose", kind: boolFlag, short: "v", usage: compatUsage},
	compat("log-style", valueFlag),
	compat("log-color", valueFlag),
}

// addFlags declares specs on cmd. Values stay strings: each command checks
// its own values so that messages name the flag and tolerate the quotes
// KubeRay leaves around JSON (unquote).
func addFlags(cmd *cobra.Command, specs []flagSpec) {
	fs := cmd.Flags()
	for _, s := range specs {
		switch s.kind {
		case boolFlag:
			fs.VarPF(new(clickBool), s.name, s.short, s.usage).NoOptDefVal = "true"
		case valueFlag:
			fs.StringP(s.name, s.short, "", s.usage)
			complete := cobra.NoFileCompletions
			switch s.complete {
			case completeFiles:
				complete = cobra.FixedCompletions(nil, cobra.ShellCompDirectiveDefault)
			case completeDirs:
				complete = cobra.FixedCompletions(nil, cobra.ShellCompDirectiveFilterDirs)
			}
			// Registration fails only for an undeclared or twice-registered
			// flag, which the tests building every command would catch.
			_ = cmd.RegisterFlagCompletionFunc(s.name, complete)
		case multiFlag:
			fs.StringArrayP(s.name, s.short, nil, s.usage)
			_ = cmd.RegisterFlagCompletionFunc(s.name, cobra.NoFileCompletions)
		}
	}
}

// clickBool is a boolean flag: bare --flag means true, and --flag=value
// takes true or false in any case, as Ray's CLI does.
type clickBool bool

func (b *clickBool) Set(s string) error {
	v, err := strconv.ParseBool(strings.ToLower(s))
	if err != nil {
		return errors.New("expected true or false")
	}
	*b = clickBool(v)
	return nil
}

func (b *clickBool) String() string   { return strconv.FormatBool(bool(*b)) }
func (b *clickBool) Type() string     { return "bool" }
func (b *clickBool) IsBoolFlag() bool { return true }

// parsedFlags is a command's command line after parsing.
type parsedFlags struct {
	fs   *pflag.FlagSet
	args []string
	// warnings lists flags that were not declared. Only `ray start` allows
	// them, so that a newer KubeRay or Ray flag never crashes a pod.
	warnings []string
}

// str is the value given to a value flag, "" when it was not given.
func (p *parsedFlags) str(name string) string {
	if f := p.fs.Lookup(name); f != nil && f.Changed {
		return f.Value.String()
	}
	return ""
}

// strs is every value given to a multiFlag, in order.
func (p *parsedFlags) strs(name string) []string {
	v, err := p.fs.GetStringArray(name)
	if err != nil {
		return nil
	}
	return v
}

// has reports whether the flag was given, even with an empty value.
func (p *parsedFlags) has(name string) bool { return p.fs.Changed(name) }

func (p *parsedFlags) bool(name string) bool { return p.str(name) == "true" }

// unknownFlags names the flags in args that fs does not declare. It reads
// args as pflag does when unknown flags are allowed: an unknown flag's value
// is what follows "=", or else the next word unless that is a flag too.
func unknownFlags(fs *pflag.FlagSet, args []string) []string {
	var unknown []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if len(a) < 2 || a[0] != '-' {
			continue
		}
		dashes := a[:len(a)-len(strings.TrimLeft(a, "-"))]
		name, _, hasValue := strings.Cut(a[len(dashes):], "=")
		var f *pflag.Flag
		switch {
		case len(dashes) == 2:
			f = fs.Lookup(name)
		case name != "":
			// -x, -xVALUE or -x=VALUE: the first letter names the flag.
			f = fs.ShorthandLookup(name[:1])
			hasValue = hasValue || len(name) > 1
		}
		takesNext := i+1 < len(args) && !hasValue
		switch {
		case f == nil:
			unknown = append(unknown, dashes+name)
			if takesNext && !strings.HasPrefix(args[i+1], "-") {
				i++
			}
		case takesNext && f.NoOptDefVal == "":
			i++
		}
	}
	return unknown
}

// unquote strips one pair of matching quotes around a value, for flags such
// as --resources='{"TPU":4}' passed without a shell to remove them.
func unquote(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && (s[0] == '\'' && s[len(s)-1] == '\'' || s[0] == '"' && s[len(s)-1] == '"') {
		return s[1 : len(s)-1]
	}
	return s
}

package raycli

import (
	"fmt"
	"strconv"
	"strings"
)

type flagKind int

const (
	boolFlag flagKind = iota
	valueFlag
)

// flagSpec declares a flag the command understands. Names are without the
// leading dashes; short is a one-letter alias ("f" for -f).
type flagSpec struct {
	name  string
	kind  flagKind
	short string
}

// parsedFlags holds what parseFlags found.
type parsedFlags struct {
	values map[string]string
	bools  map[string]bool
	args   []string
	// warnings lists flags that were not declared; they are accepted so
	// that a newer KubeRay or Ray flag never crashes a pod.
	warnings []string
}

func (p *parsedFlags) str(name string) string { return p.values[name] }

func (p *parsedFlags) has(name string) bool {
	_, ok := p.values[name]
	return ok
}

func (p *parsedFlags) bool(name string) bool { return p.bools[name] }

// parseFlags parses click-style arguments: --key=value, --key value, bare
// --flag for booleans (and --flag=true|false), -x short aliases, and "--"
// ending the flags. With stopAtArg the first positional argument ends the
// flags too (the entrypoint of `ray job submit`). Unknown --key=value and
// --key flags are kept with a warning; a bare unknown flag takes the next
// argument as its value only when the command has no positionals.
func parseFlags(args []string, specs []flagSpec, stopAtArg, positionals bool) (*parsedFlags, error) {
	byName := map[string]flagSpec{}
	for _, s := range specs {
		byName[s.name] = s
		if s.short != "" {
			byName[s.short] = s
		}
	}
	p := &parsedFlags{values: map[string]string{}, bools: map[string]bool{}}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			p.args = append(p.args, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			if stopAtArg {
				p.args = append(p.args, args[i:]...)
				break
			}
			p.args = append(p.args, a)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		spec, known := byName[name]
		if !known {
			p.warnings = append(p.warnings, "--"+name)
			switch {
			case hasValue:
				p.values[name] = value
			case !positionals && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-"):
				p.values[name] = args[i+1]
				i++
			default:
				p.bools[name] = true
			}
			continue
		}
		switch spec.kind {
		case boolFlag:
			b := true
			if hasValue {
				var err error
				if b, err = strconv.ParseBool(strings.ToLower(value)); err != nil {
					return nil, fmt.Errorf("invalid value %q for --%s: expected true or false", value, spec.name)
				}
			}
			p.bools[spec.name] = b
		case valueFlag:
			if !hasValue {
				if i+1 >= len(args) {
					return nil, fmt.Errorf("option --%s requires an argument", spec.name)
				}
				value = args[i+1]
				i++
			}
			p.values[spec.name] = value
		}
	}
	return p, nil
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

package stateapi

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MaxLimit is the largest ?limit the API answers, as Ray's default
// RAY_MAX_LIMIT_FROM_API_SERVER.
const MaxLimit = 10000

// Filter is one (key, predicate, value) triple of a list query; a query's
// filters all have to hold (AND).
type Filter struct {
	Key, Predicate, Value string
}

// Predicates are the comparisons a filter may use, as Ray's.
var Predicates = []string{"=", "!="}

// ListOptions are a list query's parameters.
type ListOptions struct {
	Limit   int
	Timeout time.Duration
	// Detail returns every column of a row, not only the base ones.
	Detail  bool
	Filters []Filter
}

// queryParams are the parameters a list query may carry. exclude_driver
// changes nothing here: drivers are never listed as tasks. Ray's Python
// client also sends server_timeout_multiplier, which it has already
// applied to timeout; Ray's server reads nothing from it either.
var queryParams = []string{"limit", "timeout", "detail", "exclude_driver", "server_timeout_multiplier",
	"filter_keys", "filter_predicates", "filter_values"}

// ParseListOptions reads a list query's parameters; the filter parameters
// repeat, the i-th key, predicate and value forming the i-th filter.
func ParseListOptions(q url.Values) (ListOptions, error) {
	opts := ListOptions{Limit: DefaultLimit, Timeout: 30 * time.Second}
	for k := range q {
		if !slices.Contains(queryParams, k) {
			return opts, fmt.Errorf("query parameter %q is not supported; the state API takes %s", k, strings.Join(queryParams, ", "))
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return opts, fmt.Errorf("limit: %q is not a positive integer", v)
		}
		if n > MaxLimit {
			return opts, fmt.Errorf("limit: %d exceeds the largest limit the state API answers, %d", n, MaxLimit)
		}
		opts.Limit = n
	}
	if v := q.Get("timeout"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return opts, fmt.Errorf("timeout: %q is not a positive number of seconds", v)
		}
		opts.Timeout = time.Duration(n) * time.Second
	}
	if v, ok := q["server_timeout_multiplier"]; ok {
		if f, err := strconv.ParseFloat(v[0], 64); err != nil || f <= 0 || f > 1 {
			return opts, fmt.Errorf("server_timeout_multiplier: %q is not a number in (0, 1]", v[0])
		}
	}
	for _, name := range []string{"detail", "exclude_driver"} {
		if v, ok := q[name]; ok {
			b, err := parseBool(v[0])
			if err != nil {
				return opts, fmt.Errorf("%s: %w", name, err)
			}
			if name == "detail" {
				opts.Detail = b
			}
		}
	}
	keys, preds, vals := q["filter_keys"], q["filter_predicates"], q["filter_values"]
	if len(keys) != len(preds) || len(keys) != len(vals) {
		return opts, fmt.Errorf("filters come as filter_keys, filter_predicates and filter_values triples; got %d filter_keys, %d filter_predicates and %d filter_values",
			len(keys), len(preds), len(vals))
	}
	for i := range keys {
		opts.Filters = append(opts.Filters, Filter{Key: keys[i], Predicate: preds[i], Value: vals[i]})
	}
	return opts, nil
}

// parseBool reads a boolean as Ray's state API does: true/false in any
// case, or 1/0.
func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean; use true, false, 1 or 0", s)
}

// matcher is a filter checked against a resource's schema.
type matcher struct {
	col    column
	negate bool
	text   string
	num    int64
	flag   bool
}

// compile checks filters against s: known, filterable columns (keys in any
// case), a known predicate, and a value the column's type can hold.
func compile(kind string, s schema, filters []Filter) ([]matcher, error) {
	out := make([]matcher, 0, len(filters))
	for _, f := range filters {
		key := strings.ToLower(strings.TrimSpace(f.Key))
		col, ok := s.column(key)
		if !ok || !col.filterable {
			if slices.Contains(s.unreported, key) {
				return nil, fmt.Errorf("filter column %q: this runtime does not report %s' %s; filter columns of %s: %s",
					f.Key, kind, key, kind, strings.Join(s.filterable(), ", "))
			}
			return nil, fmt.Errorf("filter column %q is not a filter column of %s; use one of %s",
				f.Key, kind, strings.Join(s.filterable(), ", "))
		}
		if !slices.Contains(Predicates, f.Predicate) {
			return nil, fmt.Errorf("filter on %s: predicate %q is not supported; use = or !=", key, f.Predicate)
		}
		m := matcher{col: col, negate: f.Predicate == "!=", text: f.Value}
		switch col.typ {
		case intCol:
			n, err := strconv.ParseInt(strings.TrimSpace(f.Value), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("filter on %s: %q is not an integer, and %s is an integer column", key, f.Value, key)
			}
			m.num = n
		case boolCol:
			b, err := parseBool(strings.TrimSpace(f.Value))
			if err != nil {
				return nil, fmt.Errorf("filter on %s: %w", key, err)
			}
			m.flag = b
		}
		out = append(out, m)
	}
	return out, nil
}

// matches reports whether row passes every filter. Text compares without
// regard to case, as Ray's does; a row without the column (or with null)
// equals no value.
func matches(row map[string]any, ms []matcher) bool {
	for _, m := range ms {
		if m.match(row[m.col.name]) == m.negate {
			return false
		}
	}
	return true
}

// match is the "=" comparison.
func (m matcher) match(v any) bool {
	switch x := v.(type) {
	case string:
		return m.col.typ == textCol && strings.EqualFold(x, m.text)
	case float64:
		return m.col.typ == intCol && x == float64(m.num)
	case bool:
		return m.col.typ == boolCol && x == m.flag
	}
	return false
}

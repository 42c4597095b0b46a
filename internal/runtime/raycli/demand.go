package raycli

import (
	"fmt"
	"strings"
)

// shapeString prints a resource shape like Ray's Python dict repr.
func shapeString(res map[string]float64) string {
	names := visibleResources(res)
	parts := make([]string, 0, len(names))
	for _, n := range names {
		if res[n] > 0 {
			parts = append(parts, fmt.Sprintf("'%s': %s", n, formatAmount(res[n])))
		}
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

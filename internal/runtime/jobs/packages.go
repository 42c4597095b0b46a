package jobs

import (
	"fmt"
	"io"
	"net/http"

	"github.com/rayk8s/rayk8s/internal/dashboard"
	"github.com/rayk8s/rayk8s/internal/runtime/gcs"
)

const (
	// PackagesKVNamespace holds uploaded runtime_env packages, keyed by URI
	// (gcs://_ray_pkg_<hash>.zip).
	PackagesKVNamespace = "package"
	// MaxPackageBytes bounds one uploaded package.
	MaxPackageBytes = 100 << 20
)

// NewPackagesHandler serves GET/PUT /api/packages/{protocol}/{name}: the
// `ray job submit --working-dir <local dir>` upload path.
func NewPackagesHandler(store gcs.Storage) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/packages/{protocol}/{name}", func(w http.ResponseWriter, r *http.Request) {
		uri := r.PathValue("protocol") + "://" + r.PathValue("name")
		_, ok, err := store.Get(r.Context(), PackagesKVNamespace, uri)
		switch {
		case err != nil:
			dashboard.WriteText(w, http.StatusInternalServerError, err.Error())
		case !ok:
			dashboard.WriteText(w, http.StatusNotFound, fmt.Sprintf("Package %s does not exist", uri))
		default:
			w.WriteHeader(http.StatusOK)
		}
	})
	mux.HandleFunc("PUT /api/packages/{protocol}/{name}", func(w http.ResponseWriter, r *http.Request) {
		uri := r.PathValue("protocol") + "://" + r.PathValue("name")
		data, err := io.ReadAll(io.LimitReader(r.Body, MaxPackageBytes+1))
		if err != nil {
			dashboard.WriteText(w, http.StatusInternalServerError, fmt.Sprintf("Reading package %s: %v", uri, err))
			return
		}
		if len(data) > MaxPackageBytes {
			dashboard.WriteText(w, http.StatusInternalServerError, fmt.Sprintf("Package %s is larger than %d bytes", uri, MaxPackageBytes))
			return
		}
		if _, err := store.Put(r.Context(), PackagesKVNamespace, uri, data, true); err != nil {
			dashboard.WriteText(w, http.StatusInternalServerError, err.Error())
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	return mux
}

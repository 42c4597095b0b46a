// Command coredns is CoreDNS (github.com/coredns/coredns) with only the plugins the local
// cluster's DNS needs: kubernetes (Services, headless Services and pods from the API), template
// (NXDOMAIN for every name outside the cluster: these machines have no upstream to forward to),
// and the operational ones (errors, log, health, ready, cache, loop, reload, bind).
//
// devcluster runs it as a host process bound on the pod bridge's address and publishes it as the
// kube-dns Service (see internal/devcluster/clusterdns).
package main

import (
	"slices"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
	_ "github.com/coredns/coredns/plugin/template"
)

// plugins are the directives compiled in; CoreDNS's own order among them is kept, since the
// order of Directives is the order a query passes through the plugins.
var plugins = []string{"bind", "cache", "errors", "health", "kubernetes", "log", "loop", "ready", "reload", "template"}

func init() {
	dnsserver.Directives = slices.DeleteFunc(slices.Clone(dnsserver.Directives), func(d string) bool {
		return !slices.Contains(plugins, d)
	})
}

func main() { coremain.Run() }

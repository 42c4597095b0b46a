// Package devcluster holds the pieces of the local cluster `cmd/devcluster` runs: a real
// Kubernetes control plane built from Go modules and a process node that runs pods as host
// processes. Each subpackage has one job:
//
//	netns        bridge, per-pod network namespaces, veth pairs and pod IPs (via `ip`)
//	hostpaths    directories created on the host for mount targets, removed on `down`
//	podinit      the pid-1 helper each container runs under (mounts, netns, signal relay, reaping)
//	podlogs      CRI-format container log files: writer and reader for `kubectl logs`
//	podenv       container environment: env, envFrom, downward API, service variables
//	volumes      emptyDir, configMap, secret, downwardAPI and projected volumes as directories
//	probe        exec, HTTP and TCP probes
//	processnode  the virtual-kubelet provider tying these together, and the node runner
//	controlplane etcd, kube-apiserver, kube-controller-manager, kube-scheduler, PKI, kubeconfigs
package devcluster

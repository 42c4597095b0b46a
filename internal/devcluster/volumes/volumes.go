// Package volumes materialises a pod's volumes as host directories under the pod's state
// directory: emptyDir, configMap, secret, downwardAPI and projected volumes (service-account
// tokens included), plus hostPath. The process node bind-mounts them at each container's
// mountPath. Contents are written once when the pod starts; updates to a ConfigMap or Secret
// are not propagated, and tokens are not refreshed (the apiserver's extended token expiry
// makes them last a year).
package volumes

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	corev1listers "k8s.io/client-go/listers/core/v1"

	"github.com/rayk8s/rayk8s/internal/devcluster/podenv"
)

// TokenFunc issues a service-account token bound to pod for audience (empty: the apiserver's).
type TokenFunc func(ctx context.Context, pod *corev1.Pod, serviceAccount, audience string, expirationSeconds int64) (string, error)

// Sources are what volumes are filled from.
type Sources struct {
	ConfigMaps corev1listers.ConfigMapLister
	Secrets    corev1listers.SecretLister
	Token      TokenFunc
}

// Materialize creates every volume of pod under dir/<volume name> (hostPath volumes stay where
// they are) and returns each volume's host path by name.
func Materialize(ctx context.Context, src Sources, pod *corev1.Pod, dir string, rt podenv.Runtime) (map[string]string, error) {
	paths := map[string]string{}
	for _, v := range pod.Spec.Volumes {
		if v.HostPath != nil {
			if t := v.HostPath.Type; t != nil && *t == corev1.HostPathDirectoryOrCreate {
				if err := os.MkdirAll(v.HostPath.Path, 0o755); err != nil {
					return nil, fmt.Errorf("volume %s: %w", v.Name, err)
				}
			}
			paths[v.Name] = v.HostPath.Path
			continue
		}
		p := filepath.Join(dir, v.Name)
		if err := os.MkdirAll(p, 0o777); err != nil {
			return nil, fmt.Errorf("volume %s: %w", v.Name, err)
		}
		if err := fill(ctx, src, pod, v, p, rt); err != nil {
			return nil, fmt.Errorf("volume %s: %w", v.Name, err)
		}
		paths[v.Name] = p
	}
	return paths, nil
}

func fill(ctx context.Context, src Sources, pod *corev1.Pod, v corev1.Volume, dir string, rt podenv.Runtime) error {
	switch {
	case v.EmptyDir != nil:
		return os.Chmod(dir, 0o777)
	case v.ConfigMap != nil:
		return writeConfigMap(src, pod.Namespace, v.ConfigMap.Name, v.ConfigMap.Items, v.ConfigMap.Optional, mode(v.ConfigMap.DefaultMode), dir)
	case v.Secret != nil:
		return writeSecret(src, pod.Namespace, v.Secret.SecretName, v.Secret.Items, v.Secret.Optional, mode(v.Secret.DefaultMode), dir)
	case v.DownwardAPI != nil:
		return writeDownward(pod, v.DownwardAPI.Items, mode(v.DownwardAPI.DefaultMode), dir, rt)
	case v.Projected != nil:
		def := mode(v.Projected.DefaultMode)
		for _, s := range v.Projected.Sources {
			var err error
			switch {
			case s.ServiceAccountToken != nil:
				err = writeToken(ctx, src, pod, s.ServiceAccountToken, def, dir)
			case s.ConfigMap != nil:
				err = writeConfigMap(src, pod.Namespace, s.ConfigMap.Name, s.ConfigMap.Items, s.ConfigMap.Optional, def, dir)
			case s.Secret != nil:
				err = writeSecret(src, pod.Namespace, s.Secret.Name, s.Secret.Items, s.Secret.Optional, def, dir)
			case s.DownwardAPI != nil:
				err = writeDownward(pod, s.DownwardAPI.Items, def, dir, rt)
			default:
				err = fmt.Errorf("unsupported projected source (the process node supports serviceAccountToken, configMap, secret, downwardAPI)")
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("unsupported volume type (the process node supports emptyDir, configMap, secret, downwardAPI, projected, hostPath)")
}

func mode(m *int32) os.FileMode {
	if m == nil {
		return 0o644
	}
	return os.FileMode(*m)
}

func writeConfigMap(src Sources, ns, name string, items []corev1.KeyToPath, optional *bool, def os.FileMode, dir string) error {
	cm, err := src.ConfigMaps.ConfigMaps(ns).Get(name)
	if err != nil {
		if apierrors.IsNotFound(err) && optional != nil && *optional {
			return nil
		}
		return fmt.Errorf("configmap %s: %w", name, err)
	}
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return writeKeys(data, items, def, dir, "configmap "+name)
}

func writeSecret(src Sources, ns, name string, items []corev1.KeyToPath, optional *bool, def os.FileMode, dir string) error {
	s, err := src.Secrets.Secrets(ns).Get(name)
	if err != nil {
		if apierrors.IsNotFound(err) && optional != nil && *optional {
			return nil
		}
		return fmt.Errorf("secret %s: %w", name, err)
	}
	return writeKeys(s.Data, items, def, dir, "secret "+name)
}

func writeKeys(data map[string][]byte, items []corev1.KeyToPath, def os.FileMode, dir, what string) error {
	if len(items) == 0 {
		for k, v := range data {
			if err := writeFile(dir, k, v, def); err != nil {
				return err
			}
		}
		return nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			return fmt.Errorf("%s has no key %q", what, it.Key)
		}
		m := def
		if it.Mode != nil {
			m = os.FileMode(*it.Mode)
		}
		if err := writeFile(dir, it.Path, v, m); err != nil {
			return err
		}
	}
	return nil
}

func writeDownward(pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile, def os.FileMode, dir string, rt podenv.Runtime) error {
	for _, it := range items {
		var v string
		var err error
		switch {
		case it.FieldRef != nil:
			v, err = podenv.FieldValue(pod, it.FieldRef.FieldPath, rt)
		case it.ResourceFieldRef != nil:
			c := &corev1.Container{}
			if len(pod.Spec.Containers) > 0 {
				c = &pod.Spec.Containers[0]
			}
			v, err = podenv.ResourceValue(pod, c, it.ResourceFieldRef, rt.NodeAllocatable)
		}
		if err != nil {
			return err
		}
		m := def
		if it.Mode != nil {
			m = os.FileMode(*it.Mode)
		}
		if err := writeFile(dir, it.Path, []byte(v), m); err != nil {
			return err
		}
	}
	return nil
}

func writeToken(ctx context.Context, src Sources, pod *corev1.Pod, t *corev1.ServiceAccountTokenProjection, def os.FileMode, dir string) error {
	if src.Token == nil {
		return fmt.Errorf("service-account tokens are not available on this node")
	}
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	exp := int64(3600)
	if t.ExpirationSeconds != nil {
		exp = *t.ExpirationSeconds
	}
	tok, err := src.Token(ctx, pod, sa, t.Audience, exp)
	if err != nil {
		return fmt.Errorf("token for service account %s: %w", sa, err)
	}
	return writeFile(dir, t.Path, []byte(tok), def)
}

func writeFile(dir, rel string, data []byte, m os.FileMode) error {
	clean := filepath.Clean(rel)
	if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
		return fmt.Errorf("path %q leaves the volume", rel)
	}
	p := filepath.Join(dir, clean)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, data, m.Perm())
}

package processnode

import (
	"fmt"
	"os"
	"strings"
)

// ImageName is the part of an image reference that says which image it is: without registry,
// tag or digest, and without Docker Hub's "library/" ("docker.io/library/redis:7.4.0@sha256:…"
// and "redis" are both "redis"; "bitnami/redis:7" is "bitnami/redis").
func ImageName(ref string) string {
	name, _, _ := strings.Cut(ref, "@")
	parts := strings.Split(name, "/")
	// A first component with a dot or a port, or localhost, is a registry (Docker's rule).
	if len(parts) > 1 && (strings.ContainsAny(parts[0], ".:") || parts[0] == "localhost") {
		parts = parts[1:]
	}
	if last := parts[len(parts)-1]; strings.Contains(last, ":") {
		parts[len(parts)-1], _, _ = strings.Cut(last, ":")
	}
	if len(parts) == 2 && parts[0] == "library" {
		parts = parts[1:]
	}
	return strings.Join(parts, "/")
}

// imageFor returns the stand-in for the image reference ref.
func (c Config) imageFor(ref string) Image {
	if img, ok := c.Images[ImageName(ref)]; ok {
		return img
	}
	return c.Image
}

// check reports a host executable of Binaries that is missing, naming the package to install.
func (img Image) check(ref string) error {
	for inImage, host := range img.Binaries {
		if fi, err := os.Stat(host); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return fmt.Errorf("image %s: the process node runs the host's %s for %s, and it is not installed: install the Debian package %s (hack/install-deps.sh does)",
				ref, host, inImage, img.Package)
		}
	}
	return nil
}

// mapArgv0 returns argv with argv[0] replaced by its host executable when it names one of the
// image's Binaries.
func (img Image) mapArgv0(argv []string) []string {
	if len(argv) == 0 {
		return argv
	}
	if host, ok := img.Binaries[argv[0]]; ok {
		return append([]string{host}, argv[1:]...)
	}
	return argv
}

package host

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/datapulse/datapulse/plugins/sdk"
)

// ManifestFile is the name of the manifest inside each connector directory
// under Options.PluginDir.
const ManifestFile = "manifest.json"

// Manifest describes a third-party connector installed under
// <PluginDir>/<name>/manifest.json.
type Manifest struct {
	Name            string `json:"name"`
	Version         string `json:"version"`
	Executable      string `json:"executable"` // relative to the connector directory
	SHA256          string `json:"sha256"`     // hex, of the executable
	ProtocolVersion int    `json:"protocol_version"`
	// Datapulse optionally bounds the DataPulse versions the connector works
	// with: space-separated comparisons that must all hold, e.g.
	// ">=0.9.0 <2.0.0". A server outside the range refuses the connector.
	Datapulse string `json:"datapulse,omitempty"`
}

var nameRE = regexp.MustCompile(sdk.NamePattern) // the rule sdktest checks too

// Checksum returns the hex SHA-256 of the file at path: the value a
// manifest's "sha256" must hold (`datapulse plugin checksum <path>`).
func Checksum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// installed is a validated third-party connector ready to be launched.
type installed struct {
	manifest Manifest
	dir      string // resolved connector directory
	exe      string // resolved executable path, inside dir
	checksum []byte
}

// loadManifest validates <pluginDir>/<entry>. It returns the connector name
// (the directory name when the manifest cannot be read) and either the
// launchable connector or the reason it is refused.
func loadManifest(pluginDir, entry string) (string, *installed, error) {
	name := entry
	dir := filepath.Join(pluginDir, entry)
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return name, nil, fmt.Errorf("resolve directory: %w", err)
	}
	if !within(pluginDir, realDir) {
		return name, nil, fmt.Errorf("directory %s is a symlink leading outside %s", dir, pluginDir)
	}
	st, err := os.Stat(realDir)
	if err != nil {
		return name, nil, err
	}
	if !st.IsDir() {
		return name, nil, fmt.Errorf("%s is not a directory", dir)
	}
	if st.Mode().Perm()&0o002 != 0 {
		return name, nil, fmt.Errorf("directory %s is world-writable", dir)
	}

	mpath := filepath.Join(realDir, ManifestFile)
	mst, err := os.Lstat(mpath)
	if err != nil {
		return name, nil, fmt.Errorf("read manifest: %w", err)
	}
	if !mst.Mode().IsRegular() {
		return name, nil, fmt.Errorf("%s is not a regular file", mpath)
	}
	f, err := os.Open(mpath)
	if err != nil {
		return name, nil, fmt.Errorf("read manifest: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(f, 64<<10))
	f.Close()
	if err != nil {
		return name, nil, fmt.Errorf("read manifest: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return name, nil, fmt.Errorf("manifest %s is not valid JSON: %w", mpath, err)
	}
	switch {
	case m.Name == "":
		return name, nil, errors.New("manifest has no name")
	case m.Name != entry:
		return name, nil, fmt.Errorf("manifest name %q does not match its directory %q", m.Name, entry)
	case m.Version == "":
		return name, nil, errors.New("manifest has no version")
	case m.ProtocolVersion != sdk.ProtocolVersion:
		return name, nil, fmt.Errorf("manifest protocol_version %d is not supported (this DataPulse speaks %d)", m.ProtocolVersion, sdk.ProtocolVersion)
	case m.Executable == "":
		return name, nil, errors.New("manifest has no executable")
	}
	sum, err := hex.DecodeString(strings.ToLower(m.SHA256))
	if err != nil || len(sum) != sha256.Size {
		return name, nil, errors.New("manifest sha256 must be 64 hex digits")
	}
	if filepath.IsAbs(m.Executable) {
		return name, nil, fmt.Errorf("manifest executable %q must be relative to the connector directory", m.Executable)
	}
	exe := filepath.Join(realDir, m.Executable)
	if !within(realDir, exe) {
		return name, nil, fmt.Errorf("manifest executable %q escapes the connector directory", m.Executable)
	}
	realExe, err := filepath.EvalSymlinks(exe)
	if err != nil {
		return name, nil, fmt.Errorf("executable: %w", err)
	}
	if !within(realDir, realExe) {
		return name, nil, fmt.Errorf("executable %q is a symlink leading outside the connector directory", m.Executable)
	}
	est, err := os.Stat(realExe)
	if err != nil {
		return name, nil, fmt.Errorf("executable: %w", err)
	}
	switch {
	case !est.Mode().IsRegular():
		return name, nil, fmt.Errorf("executable %q is not a regular file", m.Executable)
	case est.Mode().Perm()&0o002 != 0:
		return name, nil, fmt.Errorf("executable %q is world-writable", m.Executable)
	case est.Mode().Perm()&0o111 == 0:
		return name, nil, fmt.Errorf("executable %q is not executable", m.Executable)
	}
	got, err := Checksum(realExe)
	if err != nil {
		return name, nil, fmt.Errorf("checksum: %w", err)
	}
	if got != hex.EncodeToString(sum) {
		return name, nil, fmt.Errorf("checksum mismatch: executable %q has sha256 %s, manifest says %s", m.Executable, got, hex.EncodeToString(sum))
	}
	return name, &installed{manifest: m, dir: realDir, exe: realExe, checksum: sum}, nil
}

// within reports whether path is parent or inside it (both cleaned).
func within(parent, path string) bool {
	rel, err := filepath.Rel(parent, path)
	if err != nil {
		return false
	}
	return rel == "." || (rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel))
}

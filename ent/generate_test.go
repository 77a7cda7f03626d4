package ent_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestGeneratedCodeIsCurrent fails when the committed ent code is not what
// `go generate ./ent` makes from ent/schema (a schema edited without
// regenerating, or generated files edited by hand).
//
// It copies the module into a temporary directory and runs the go:generate
// command of generate.go there, exactly as `go generate ./ent` would, then
// compares the two ent directories. Running the ent command rather than
// importing entgo.io/ent/entc keeps the generator's own dependencies
// (golang.org/x/tools) out of this module's go.mod, and the sandbox keeps the
// working tree untouched.
//
// A schema change that shifts field positions can make the stale committed
// runtime.go panic while package ent initialises, before this test runs; the
// panic then points at ent/runtime.go, and .ci/run's `go generate ./ent` +
// `git diff` step reports the same staleness plainly.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the ent code generator")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("this test runs the go command, which is not on PATH: %v", err)
	}
	root, err := filepath.Abs("..") // the test runs in <module>/ent
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found above the ent directory: %v", err)
	}
	args := generateCommand(t, "generate.go")

	sandbox := t.TempDir()
	copyModule(t, root, sandbox)
	cmd := exec.Command(goBin, args[1:]...)
	cmd.Dir = filepath.Join(sandbox, "ent")
	// The copy carries go.work, whose workspace mode refuses -mod=mod; the
	// copied go.mod's replace directives already reach the SDK modules.
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s (in a copy of the module): %v\n%s", strings.Join(args, " "), err, out)
	}

	committed := treeFiles(t, filepath.Join(root, "ent"))
	generated := treeFiles(t, filepath.Join(sandbox, "ent"))
	var differ, missing, removed []string
	for rel, want := range generated {
		have, ok := committed[rel]
		switch {
		case !ok:
			missing = append(missing, rel)
		case !bytes.Equal(have, want):
			differ = append(differ, fmt.Sprintf("%s (%s)", rel, firstDiff(have, want)))
		}
	}
	for rel := range committed {
		if _, ok := generated[rel]; !ok {
			removed = append(removed, rel)
		}
	}
	if len(differ)+len(missing)+len(removed) == 0 {
		return
	}
	var msg strings.Builder
	msg.WriteString("the committed ent code is not what `go generate ./ent` makes from ent/schema; run `go generate ./ent` and commit the result.\n")
	report := func(what string, files []string) {
		if len(files) == 0 {
			return
		}
		sort.Strings(files)
		fmt.Fprintf(&msg, "%s (%d):\n", what, len(files))
		for i, f := range files {
			if i == 10 {
				fmt.Fprintf(&msg, "  … and %d more\n", len(files)-i)
				break
			}
			fmt.Fprintf(&msg, "  ent/%s\n", f)
		}
	}
	report("files that differ", differ)
	report("generated files that are not in the working tree", missing)
	report("files the generator deletes (left over from a removed entity)", removed)
	t.Fatal(msg.String())
}

// generateCommand returns the words of the single go:generate line of file.
func generateCommand(t *testing.T, file string) []string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var found []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "//go:generate "); ok {
			if found != nil {
				t.Fatalf("%s has more than one go:generate line; update this test", file)
			}
			found = strings.Fields(line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(found) < 3 || found[0] != "go" || found[1] != "run" {
		t.Fatalf("%s: want one `//go:generate go run …` line, got %q", file, found)
	}
	return found
}

// copyModule copies the module's source tree: not .git or other dot-dirs,
// not the default data directory, not big files such as a built binary.
func copyModule(t *testing.T, src, dst string) {
	t.Helper()
	const maxFile = 16 << 20
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		if rel != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "datapulse-data") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if info, err := d.Info(); err != nil || info.Size() > maxFile {
			return err
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(target)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatalf("copy module: %v", err)
	}
}

// treeFiles reads every regular file under dir (dot-dirs skipped), by
// slash-separated relative path.
func treeFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path != dir && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// firstDiff describes where two versions of a file first differ.
func firstDiff(have, want []byte) string {
	hl := strings.Split(string(have), "\n")
	wl := strings.Split(string(want), "\n")
	for i := 0; i < len(hl) || i < len(wl); i++ {
		var h, w string
		if i < len(hl) {
			h = hl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if h != w {
			return fmt.Sprintf("line %d: committed %q, generated %q", i+1, clip(h), clip(w))
		}
	}
	return "same lines, different bytes"
}

func clip(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

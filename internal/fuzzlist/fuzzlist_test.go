package fuzzlist

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var fuzzFuncRE = regexp.MustCompile(`(?m)^func (Fuzz[A-Za-z0-9_]*)\(\w+ \*testing\.F\)`)

// makefileTargets reads FUZZ_TARGETS (package:Function entries, one per
// continuation line) from the Makefile.
func makefileTargets(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "FUZZ_TARGETS :=") {
			in = true
			line = strings.TrimSpace(strings.TrimPrefix(line, "FUZZ_TARGETS :="))
		}
		if !in {
			continue
		}
		cont := strings.HasSuffix(line, `\`)
		for _, w := range strings.Fields(strings.TrimSuffix(line, `\`)) {
			out = append(out, w)
		}
		if !cont {
			break
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// repoTargets finds every Fuzz function in the repository's test files.
func repoTargets(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "bin", "node_modules", "testdata", ".git", ".data":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		for _, m := range fuzzFuncRE.FindAllSubmatch(src, -1) {
			out = append(out, "./"+filepath.ToSlash(rel)+":"+string(m[1]))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMakefileNamesEveryFuzzTarget(t *testing.T) {
	listed := makefileTargets(t, "../../Makefile")
	found := repoTargets(t, "../..")
	if len(found) == 0 || len(listed) == 0 {
		t.Fatalf("found %d Fuzz functions and %d Makefile entries: the scan is broken", len(found), len(listed))
	}
	for _, f := range found {
		if !slices.Contains(listed, f) {
			t.Errorf("%s exists but the Makefile's FUZZ_TARGETS does not name it: make fuzz would never run it", f)
		}
	}
	for _, l := range listed {
		if !slices.Contains(found, l) {
			t.Errorf("FUZZ_TARGETS names %s, which does not exist", l)
		}
	}
	t.Logf("%d fuzz targets, all listed", len(found))
}

// TestScanFindsAFuzzFunction proves the scan can fail: a Fuzz function in
// a temporary tree is found and reported as missing from an empty list.
func TestScanFindsAFuzzFunction(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "pkg"), 0o755); err != nil {
		t.Fatal(err)
	}
	src := "package pkg\n\nimport \"testing\"\n\nfunc FuzzNew(f *testing.F) {}\n"
	if err := os.WriteFile(filepath.Join(dir, "pkg", "x_test.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := repoTargets(t, dir); !slices.Equal(got, []string{"./pkg:FuzzNew"}) {
		t.Fatalf("scan found %v", got)
	}
}

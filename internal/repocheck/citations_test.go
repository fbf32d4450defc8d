package repocheck

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// outside matches citations of documents that live outside this
// repository: the design notes, the manual procedures and the issue
// tracker this project was built from. Facts the code relies on are in
// docs/ in the project's own words, with their public sources.
var outside = regexp.MustCompile(`FACTS ?§|\bFACTS\.md|\bARCHITECTURE\b|\.\./shared/|shared/design|shared/seeds|\bseeds?/|\b[Ss]eed 0\d\d\b|\b[Ii]ssue #?\d+\b|\bdone-means\b`)

// testOnly are citations a test may make: a test that teaches the
// simulator a behaviour names the reference row it follows.
var testOnly = regexp.MustCompile(`shared/reference/`)

func TestNoCitationsOutsideTheRepository(t *testing.T) {
	root := filepath.Join("..", "..")
	var bad []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "bin", ".data", "node_modules", "testdata":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || filepath.Base(path) == "citations_test.go" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		isTest := strings.HasSuffix(path, "_test.go")
		for i, line := range strings.Split(string(b), "\n") {
			if isTest && testOnly.MatchString(line) {
				continue
			}
			if outside.MatchString(line) || testOnly.MatchString(line) {
				rel, _ := filepath.Rel(root, path)
				bad = append(bad, rel+":"+strconv.Itoa(i+1)+": "+strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) > 0 {
		t.Errorf("%d line(s) cite documents outside this repository; say it in docs/ with the public source and point there:\n%s", len(bad), strings.Join(bad, "\n"))
	}
}

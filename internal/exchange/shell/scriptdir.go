package shell

import (
	"fmt"
	"os"
	"path/filepath"
)

// scriptName is the bootstrap copy's file name in its directory.
const scriptName = "bootstrap.ps1"

// mkdirTemp makes the bootstrap's directory (a variable so a test can
// hand back a directory that is not private).
var mkdirTemp = os.MkdirTemp

// writeScript puts the bootstrap in a new directory only the worker's own
// account can use, and returns the directory and the script's path. The
// directory is new (MkdirTemp fails rather than reuse a name) and the file
// is created exclusively, so nothing another account prepared can stand in
// for the script PowerShell runs. Where the system cannot make the
// directory private, or a check finds it readable by others, no host is
// started.
func writeScript(script []byte) (dir, path string, err error) {
	dir, err = mkdirTemp("", "hybridflow-pshost-")
	if err != nil {
		return "", "", fmt.Errorf("bootstrap directory: %w", err)
	}
	fail := func(err error) (string, string, error) {
		_ = os.RemoveAll(dir)
		return "", "", err
	}
	if err := makePrivate(dir); err != nil {
		return fail(fmt.Errorf("bootstrap directory %s: %w", dir, err))
	}
	path = filepath.Join(dir, scriptName)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fail(fmt.Errorf("create bootstrap: %w", err))
	}
	_, werr := f.Write(script)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fail(fmt.Errorf("write bootstrap: %w", werr))
	}
	if err := checkPrivateFile(path); err != nil {
		return fail(fmt.Errorf("bootstrap %s: %w", path, err))
	}
	return dir, path, nil
}

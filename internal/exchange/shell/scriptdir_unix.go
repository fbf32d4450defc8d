//go:build !windows

package shell

import (
	"fmt"
	"os"
	"syscall"
)

// makePrivate checks what MkdirTemp made: mode 0700, owned by this
// process's user. Permission bits are all a Unix directory's privacy rests
// on here, and a file system that ignores them (some network and FAT
// mounts) must not be trusted with the script.
func makePrivate(dir string) error { return checkPrivate(dir, true) }

func checkPrivateFile(path string) error { return checkPrivate(path, false) }

func checkPrivate(path string, isDir bool) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	switch {
	case isDir && !fi.IsDir():
		return fmt.Errorf("is not a directory")
	case !isDir && !fi.Mode().IsRegular():
		return fmt.Errorf("is not a regular file")
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("is accessible to other accounts (mode %04o, want no group or other access); refusing to put the bootstrap there", perm)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("is owned by uid %d, not this process's uid %d", st.Uid, os.Geteuid())
	}
	return nil
}

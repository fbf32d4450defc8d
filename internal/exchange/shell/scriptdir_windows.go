//go:build windows

package shell

import (
	"fmt"

	"golang.org/x/sys/windows"
)

// makePrivate replaces the directory's inherited access list with one that
// lets in only this process's account and SYSTEM, and stops inheritance
// from the parent. MkdirTemp's directory would otherwise inherit the temp
// directory's access list: private under a service account's own profile,
// but a service running as LocalSystem uses C:\Windows\Temp, where what
// a new directory inherits depends on the machine. The script file then
// inherits the private list.
func makePrivate(dir string) error {
	u, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return fmt.Errorf("read this process's account: %w", err)
	}
	sd, err := windows.SecurityDescriptorFromString("D:P(A;OICI;FA;;;" + u.User.Sid.String() + ")(A;OICI;FA;;;SY)")
	if err != nil {
		return fmt.Errorf("build a private access list: %w", err)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return fmt.Errorf("build a private access list: %w", err)
	}
	if err := windows.SetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil); err != nil {
		return fmt.Errorf("make it private: %w", err)
	}
	return nil
}

// checkPrivateFile has nothing to add on Windows: the file inherits the
// directory's private access list.
func checkPrivateFile(string) error { return nil }

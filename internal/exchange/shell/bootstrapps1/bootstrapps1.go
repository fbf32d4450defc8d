// Package bootstrapps1 holds bootstrap.ps1, the one fixed script
// hybridflow's PowerShell host runs, as bytes. It is a package of its own,
// importing nothing but the standard library, so that both the shell
// client (which hands the script to PowerShell) and the simulator's
// PowerShell stand-in (which refuses any other script) embed the very same
// bytes without the stand-in linking the client.
package bootstrapps1

import (
	"bytes"
	_ "embed"
)

// FileName is the name the script is written under for PowerShell.
const FileName = "bootstrap.ps1"

//go:embed bootstrap.ps1
var script []byte

// Script returns a copy of the bootstrap script.
func Script() []byte { return bytes.Clone(script) }

// Equal reports whether b is byte for byte the bootstrap script.
func Equal(b []byte) bool { return bytes.Equal(b, script) }

package bootstrapps1_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/hybridflow/hybridflow/internal/exchange/shell"
	"github.com/hybridflow/hybridflow/internal/exchange/shell/bootstrapps1"
)

// TestOneScript: the file on disk, the bytes the shell client hands
// PowerShell and the bytes the simulator's stand-in checks against are
// the same, and callers get copies they cannot use to change them.
func TestOneScript(t *testing.T) {
	disk, err := os.ReadFile(bootstrapps1.FileName)
	if err != nil {
		t.Fatal(err)
	}
	s := bootstrapps1.Script()
	if len(s) == 0 || !bytes.Equal(s, disk) || !bytes.Equal(shell.Script(), disk) || !bootstrapps1.Equal(disk) {
		t.Fatal("the embedded bootstrap differs from bootstrap.ps1 or from the shell client's")
	}
	s[0] ^= 0xff
	if bootstrapps1.Equal(s) || !bootstrapps1.Equal(disk) || !bytes.Equal(bootstrapps1.Script(), disk) {
		t.Fatal("changing a returned copy changed the script")
	}
	if bootstrapps1.Equal(disk[:len(disk)-1]) || bootstrapps1.Equal(append(bytes.Clone(disk), '\n')) {
		t.Fatal("Equal accepts a different length")
	}
}

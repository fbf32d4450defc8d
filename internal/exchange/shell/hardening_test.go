package shell

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hybridflow/hybridflow/internal/exchange"
)

// hostEnviron asks a running fake host for its environment.
func hostEnviron(t *testing.T, s *Shell) map[string]string {
	t.Helper()
	rows, err := s.Run(context.Background(), exchange.Command{Cmdlet: fakeEnviron})
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range rows[0]["env"].([]any) {
		k, v, _ := strings.Cut(kv.(string), "=")
		env[k] = v
	}
	return env
}

// The host is a separate program that loads modules the worker does not
// control; the worker's environment carries its secrets. A variable set in
// the worker, secret-looking or not, must not reach the host; what the
// site configures (Options.Env) and the system variables PowerShell needs
// must.
func TestHostGetsMinimalEnvironment(t *testing.T) {
	t.Setenv("HF_SECRET", "Hf8Q~worker-client-secret")
	t.Setenv("HYBRIDFLOW_CODEC_KEYS", "k1=env:HF_CODEC_K1")
	t.Setenv("HF_CODEC_K1", "c2VjcmV0LWNvZGVjLWtleQ==")
	t.Setenv("AZURE_CLIENT_SECRET", "another")
	t.Setenv("LC_TIME", "C")
	s := fakeShell(t, "ok", func(o *Options) {
		o.Env = append(o.Env, "HF_SITE_SETTING=site value", "HYBRIDFLOW_SIM_PSHOST=http://127.0.0.1:7481/PowerShell/site-a")
	})
	env := hostEnviron(t, s)
	for _, name := range []string{"HF_SECRET", "HYBRIDFLOW_CODEC_KEYS", "HF_CODEC_K1", "AZURE_CLIENT_SECRET"} {
		if v, ok := env[name]; ok {
			t.Errorf("worker variable %s reached the host (%d bytes)", name, len(v))
		}
	}
	if env["HF_SITE_SETTING"] != "site value" || env["HYBRIDFLOW_SIM_PSHOST"] != "http://127.0.0.1:7481/PowerShell/site-a" {
		t.Errorf("site variables missing from the host: %v", env)
	}
	pathName := "PATH"
	if runtime.GOOS == "windows" {
		pathName = "Path"
	}
	if env[pathName] == "" || env[pathName] != os.Getenv(pathName) {
		t.Errorf("host %s = %q, want the worker's %q", pathName, env[pathName], os.Getenv(pathName))
	}
	if runtime.GOOS != "windows" && env["LC_TIME"] != "C" {
		t.Errorf("locale variable LC_TIME not passed: %v", env)
	}
	t.Logf("host environment: %d variables (worker: %d)", len(env), len(os.Environ()))
}

// The allow-list by system: Windows matches names without regard to case
// and drops its per-drive "=C:" entries; elsewhere names are exact and
// every LC_* passes. A site entry replaces the system's value instead of
// adding a second one.
func TestHostEnvRules(t *testing.T) {
	tests := []struct {
		goos           string
		environ, extra []string
		want           []string
	}{
		{
			goos:    "windows",
			environ: []string{"=C:=C:\\hybridflow", "SYSTEMROOT=C:\\Windows", "Path=C:\\Windows\\system32", "PSModulePath=C:\\mods", "HF_SECRET=x", "HYBRIDFLOW_CODEC_KEYS=y", "ProgramFiles(x86)=C:\\PF86", "exchangeinstallpath=D:\\Exchange\\"},
			extra:   []string{"PATH=D:\\tools", "HYBRIDFLOW_SIM_PSHOST=http://127.0.0.1:7481/PowerShell/s"},
			want:    []string{"SYSTEMROOT=C:\\Windows", "PSModulePath=C:\\mods", "ProgramFiles(x86)=C:\\PF86", "exchangeinstallpath=D:\\Exchange\\", "PATH=D:\\tools", "HYBRIDFLOW_SIM_PSHOST=http://127.0.0.1:7481/PowerShell/s"},
		},
		{
			goos:    "linux",
			environ: []string{"HOME=/home/svc", "Path=/nope", "PATH=/usr/bin", "LC_ALL=C.UTF-8", "LANG=en_US.UTF-8", "TMPDIR=/tmp", "TERM=xterm", "HF_SECRET=x", "SSH_AUTH_SOCK=/tmp/agent"},
			extra:   []string{"LANG=C"},
			want:    []string{"HOME=/home/svc", "PATH=/usr/bin", "LC_ALL=C.UTF-8", "TMPDIR=/tmp", "LANG=C"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.goos, func(t *testing.T) {
			if got := hostEnv(tc.goos, tc.environ, tc.extra); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("hostEnv:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestScriptDirectoryIsPrivate(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows privacy is the directory's access list, not its mode bits")
	}
	s := fakeShell(t, "ok")
	rows, err := s.Run(context.Background(), exchange.Command{Cmdlet: fakeScript})
	if err != nil {
		t.Fatal(err)
	}
	path := rows[0]["path"].(string)
	dir, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	file, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if dir.Mode().Perm() != 0o700 || file.Mode().Perm() != 0o600 {
		t.Fatalf("bootstrap directory mode %04o, file mode %04o; want 0700 and 0600", dir.Mode().Perm(), file.Mode().Perm())
	}
}

// withMkdirTemp replaces how the bootstrap directory is made for one test.
func withMkdirTemp(t *testing.T, f func(dir, pattern string) (string, error)) {
	old := mkdirTemp
	mkdirTemp = f
	t.Cleanup(func() { mkdirTemp = old })
}

// A bootstrap directory others can read (a file system that ignores modes,
// say) is refused before any host process starts, and removed.
func TestScriptDirectoryOpenToOthersIsRefused(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("mode bits")
	}
	var made string
	withMkdirTemp(t, func(dir, pattern string) (string, error) {
		d, err := os.MkdirTemp(t.TempDir(), pattern)
		if err == nil {
			made = d
			err = os.Chmod(d, 0o755)
		}
		return d, err
	})
	s := fakeShell(t, "ok")
	_, err := s.Run(context.Background(), exchange.Command{Cmdlet: fakeEcho})
	if err == nil || !strings.Contains(err.Error(), "is accessible to other accounts (mode 0755") {
		t.Fatalf("want a refusal naming the directory's mode, got %v", err)
	}
	if s.Running() || s.PID() != 0 {
		t.Fatal("a host was started with the script in a public directory")
	}
	if _, err := os.Stat(made); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("refused directory left behind: %v", err)
	}
}

// The script is created, never opened: a file already at its path (planted
// by anyone who could write there) makes the start fail instead of being
// run or overwritten.
func TestScriptFileIsCreatedExclusively(t *testing.T) {
	planted := []byte("Write-Output 'not the bootstrap'\n")
	withMkdirTemp(t, func(dir, pattern string) (string, error) {
		d, err := os.MkdirTemp(t.TempDir(), pattern)
		if err == nil {
			err = os.WriteFile(filepath.Join(d, scriptName), planted, 0o600)
		}
		return d, err
	})
	s := fakeShell(t, "ok")
	_, err := s.Run(context.Background(), exchange.Command{Cmdlet: fakeEcho})
	if !errors.Is(err, os.ErrExist) || !strings.Contains(err.Error(), "create bootstrap") {
		t.Fatalf("want the exclusive create to fail, got %v", err)
	}
	if s.Running() {
		t.Fatal("a host was started over a planted script")
	}
}

// Start is the worker's start probe: a host that answers ready is left
// running for the calls that follow; one that never answers is reported
// as a start timeout after StartTimeout, and nothing is left running.
func TestStartProbe(t *testing.T) {
	ok := fakeShell(t, "ok")
	if err := ok.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	pid := ok.PID()
	if !ok.Running() || ok.Session() == "" {
		t.Fatal("probe did not leave the host running")
	}
	echo(t, ok, nil)
	if ok.PID() != pid {
		t.Fatalf("the call after the probe started another host (%d -> %d)", pid, ok.PID())
	}
	if err := ok.Start(context.Background()); err != nil || ok.PID() != pid {
		t.Fatalf("second probe: %v, pid %d -> %d", err, pid, ok.PID())
	}

	silent := fakeShell(t, "silent", func(o *Options) { o.StartTimeout = 300 * time.Millisecond })
	began := time.Now()
	err := silent.Start(context.Background())
	if !exchange.HasType(err, exchange.TypeTimeout) || !strings.Contains(err.Error(), "not ready within 300ms") {
		t.Fatalf("want a start timeout, got %v", err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Fatalf("probe took %s", took)
	}
	if silent.Running() {
		t.Fatal("the silent host was left running")
	}
}

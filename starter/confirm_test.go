package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/spf13/cobra"
)

// answeredTTY is a pseudo-terminal whose operator has typed answer (nil:
// nothing typed). The CLI reads the slave side as its stdin; the master
// side is drained so echoes never block.
func answeredTTY(t *testing.T, answer *string) *os.File {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tty.Close(); _ = ptmx.Close() })
	go func() { _, _ = io.Copy(io.Discard, ptmx) }()
	if answer != nil {
		if _, err := ptmx.Write([]byte(*answer + "\n")); err != nil {
			t.Fatal(err)
		}
	}
	return tty
}

func ptr(s string) *string { return &s }

// TestConfirm: --yes proceeds without reading; on a terminal only y/yes
// proceeds; with no terminal (a pipe, an empty reader, /dev/null) it is
// refused with a message that names --yes.
func TestConfirm(t *testing.T) {
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	cases := []struct {
		name   string
		stdin  func(t *testing.T) io.Reader
		yes    bool
		want   error // nil: proceeds
		prompt bool
		says   string
	}{
		{"--yes on a terminal does not ask", func(t *testing.T) io.Reader { return answeredTTY(t, nil) }, true, nil, false, ""},
		{"--yes without a terminal", func(*testing.T) io.Reader { return strings.NewReader("") }, true, nil, false, ""},
		{"terminal, y", func(t *testing.T) io.Reader { return answeredTTY(t, ptr("y")) }, false, nil, true, ""},
		{"terminal, YES", func(t *testing.T) io.Reader { return answeredTTY(t, ptr(" YES ")) }, false, nil, true, ""},
		{"terminal, n", func(t *testing.T) io.Reader { return answeredTTY(t, ptr("n")) }, false, errNotConfirmed, true, ""},
		{"terminal, just Enter", func(t *testing.T) io.Reader { return answeredTTY(t, ptr("")) }, false, errNotConfirmed, true, ""},
		{"terminal, yess", func(t *testing.T) io.Reader { return answeredTTY(t, ptr("yess")) }, false, errNotConfirmed, true, ""},
		{"piped y is not consent", func(*testing.T) io.Reader { return strings.NewReader("y\n") }, false, errors.New("refused"), false, "--yes"},
		{"/dev/null is a character device, not a terminal", func(*testing.T) io.Reader { return devNull }, false, errors.New("refused"), false, "--yes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var errb bytes.Buffer
			cmd := &cobra.Command{}
			cmd.SetIn(c.stdin(t))
			cmd.SetErr(&errb)
			err := confirm(cmd, "Remove the thing?", c.yes)
			switch {
			case c.want == nil && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want == errNotConfirmed && !errors.Is(err, errNotConfirmed):
				t.Fatalf("err %v, want %v", err, errNotConfirmed)
			case c.want != nil && c.want != errNotConfirmed && (err == nil || !strings.Contains(err.Error(), c.says) || !strings.Contains(err.Error(), "Remove the thing?")):
				t.Fatalf("err %v, want a refusal naming the action and %q", err, c.says)
			}
			if asked := strings.Contains(errb.String(), "Remove the thing? [y/N]"); asked != c.prompt {
				t.Fatalf("prompt shown %v, want %v: %q", asked, c.prompt, errb.String())
			}
		})
	}
}

// TestDestructiveCommandsAskFirst runs the real commands with nothing
// listening at the Temporal address: a refused or declined action stops
// before dialing (no connection error), a confirmed one goes on to dial.
func TestDestructiveCommandsAskFirst(t *testing.T) {
	const tenant = "11111111-1111-4111-8111-000000000006"
	commands := map[string][]string{
		"abort":       {"abort", "-t", tenant},
		"lync abort":  {"lync", "abort", "-s", "site-1"},
		"migrate":     {"migrate", "-f", demoInventory, "-t", tenant},
		"abort --all": {"abort", "--all-paused"},
	}
	type outcome int
	const (
		refused outcome = iota
		declined
		dialed
	)
	cases := []struct {
		name   string
		answer *string // nil: no terminal
		yes    bool
		want   outcome
	}{
		{"no terminal, no --yes", nil, false, refused},
		{"terminal, n", ptr("n"), false, declined},
		{"terminal, y", ptr("y"), false, dialed},
		{"--yes without a terminal", nil, true, dialed},
	}
	for name, args := range commands {
		for _, c := range cases {
			if name == "abort --all" && c.want != refused && !c.yes {
				continue // asked after listing the paused setups: TestOperatorSafetyOnDevServer
			}
			t.Run(name+"/"+c.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				var stdin io.Reader = strings.NewReader("")
				if c.answer != nil {
					stdin = answeredTTY(t, c.answer)
				}
				a := append([]string{}, args...)
				if c.yes {
					a = append(a, "--yes")
				}
				a = append(a, "--address", "127.0.0.1:1")
				var out, errb bytes.Buffer
				code := runIO(ctx, a, stdin, &out, &errb, func(string) string { return "" })
				got := errb.String()
				if code == 0 {
					t.Fatalf("exit 0 with nothing listening: %s", got)
				}
				dial := strings.Contains(got, "connect to Temporal")
				switch c.want {
				case refused:
					if dial || !strings.Contains(got, "--yes") || strings.Contains(got, "[y/N]") {
						t.Fatalf("want a refusal naming --yes before dialing, got: %s", got)
					}
				case declined:
					if dial || !strings.Contains(got, "[y/N]") || !strings.Contains(got, errNotConfirmed.Error()) {
						t.Fatalf("want the question and %q before dialing, got: %s", errNotConfirmed, got)
					}
				case dialed:
					if !dial || strings.Contains(got, errNotConfirmed.Error()) {
						t.Fatalf("want the command to go on and dial, got: %s", got)
					}
					if c.yes && strings.Contains(got, "[y/N]") {
						t.Fatalf("--yes must not ask: %s", got)
					}
				}
			})
		}
	}
}

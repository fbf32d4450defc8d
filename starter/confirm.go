package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// errNotConfirmed: the operator answered the prompt with anything but yes.
var errNotConfirmed = errors.New("not confirmed; nothing was changed")

// confirm guards a destructive action. --yes proceeds at once (scripts);
// on a terminal the operator is asked and only "y" or "yes" proceeds;
// anywhere else the action is refused, because nobody could have seen the
// question and an empty or piped stdin must never count as consent.
func confirm(cmd *cobra.Command, question string, yes bool) error {
	if yes {
		return nil
	}
	in := cmd.InOrStdin()
	if !stdinIsTerminal(in) {
		return fmt.Errorf("%s: refused without a terminal to ask on; repeat with --yes to confirm", question)
	}
	// The question goes to stderr so that --output json on stdout stays
	// parseable while a person is asked.
	eprintf(cmd.ErrOrStderr(), "%s [y/N] ", question)
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read the answer: %w", err)
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return errNotConfirmed
}

// stdinIsTerminal reports whether r is a terminal a person types into. A
// character device is not enough: /dev/null is one too.
func stdinIsTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

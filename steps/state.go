package steps

import (
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/hybridflow/hybridflow/contract"
)

// Step statuses as the state query shows them.
const (
	StatusPending     = "pending"
	StatusRunning     = "running"
	StatusDone        = "done"
	StatusSkipped     = "skipped"
	StatusPaused      = "paused"
	StatusFailed      = "failed"
	StatusCompensated = "compensated"
	StatusNotNeeded   = "not-needed"
)

// ErrCompensationFailed is the error type of a run whose undo (or the
// legacy-key restore) failed: the compensation list says what is left.
const ErrCompensationFailed = "CompensationFailed"

// StepState is one step's progress as the state query shows it.
type StepState struct {
	Step      string    `json:"step"`
	Status    string    `json:"status"`
	Change    string    `json:"change,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	Outcome   string    `json:"outcome,omitempty"`
	Detail    string    `json:"detail,omitempty"`
	Attempts  int       `json:"attempts"`
	Started   time.Time `json:"started,omitempty"`
	Finished  time.Time `json:"finished,omitempty"`
	LastError string    `json:"last_error,omitempty"`
	ErrorType string    `json:"error_type,omitempty"`
}

// UndoRecord is one reversible change of any workflow: the common record,
// with the previous Lync hosting provider when it is a Lync change.
type UndoRecord = contract.UndoRecord

// Entry is an undo record and the step whose change it reverses, so that
// compensation marks exactly the steps it reversed.
type Entry struct {
	Step string
	Rec  UndoRecord
}

// Ledger is a run's step states, in the order they first appear, its undo
// stack, its write count and its compensation notes. The workflows keep it
// inside their query state (the pointers), the bench's baselines in a
// plain value.
type Ledger struct {
	states *[]*StepState
	index  map[string]*StepState
	// Undo is the undo stack, oldest first.
	Undo   []Entry
	writes *int
	notes  *[]string
}

// NewLedger keeps step states in *states, the write count in *writes and
// compensation notes in *notes.
func NewLedger(states *[]*StepState, writes *int, notes *[]string) *Ledger {
	return &Ledger{states: states, index: map[string]*StepState{}, writes: writes, notes: notes}
}

// State returns the named step's state, adding it (pending) on first use.
func (l *Ledger) State(name string) *StepState {
	if st := l.index[name]; st != nil {
		return st
	}
	st := &StepState{Step: name, Status: StatusPending}
	*l.states = append(*l.states, st)
	l.index[name] = st
	return st
}

// Lookup is the named step's state, nil when the step has not appeared.
func (l *Ledger) Lookup(name string) *StepState { return l.index[name] }

// Status is the named step's status, "" when the step has not appeared.
func (l *Ledger) Status(name string) string {
	if st := l.index[name]; st != nil {
		return st.Status
	}
	return ""
}

// Push adds undo records for step to the stack.
func (l *Ledger) Push(step string, recs ...UndoRecord) {
	for _, r := range recs {
		l.Undo = append(l.Undo, Entry{Step: step, Rec: r})
	}
}

// Wrote counts a write when the outcome is one.
func (l *Ledger) Wrote(o contract.Outcome) {
	if o != contract.Unchanged && o != "" {
		*l.writes++
	}
}

// Note adds a line to the compensation list.
func (l *Ledger) Note(line string) { *l.notes = append(*l.notes, line) }

// Held is the undo records the run holds, oldest first.
func (l *Ledger) Held() []contract.UndoRecord {
	held := make([]contract.UndoRecord, len(l.Undo))
	for i, e := range l.Undo {
		held[i] = e.Rec
	}
	return held
}

// DescribeError extracts the message and the stable type of an activity
// failure for the state query and the pause.
func DescribeError(err error) (msg, typ string) {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Message(), app.Type()
	}
	var to *temporal.TimeoutError
	if errors.As(err, &to) {
		return to.Error(), "Timeout"
	}
	return err.Error(), "Unknown"
}

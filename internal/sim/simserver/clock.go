package simserver

import (
	"fmt"
	"time"

	"github.com/hybridflow/hybridflow/internal/sim"
)

// ClockTolerance is how far a pinned now may be from the wall clock. The
// product judges expiry (keys, certificates, its own schedules) by the
// wall clock, so a world whose now contradicts it would be judged by two
// clocks at once; the stand-alone simulator refuses such a world rather
// than serve it.
const ClockTolerance = 2 * time.Minute

// ClockError is a pinned time the simulator refuses.
type ClockError struct {
	Pinned, Wall time.Time
	// Hint says what to do instead.
	Hint string
}

func (e *ClockError) Error() string {
	d := e.Pinned.Sub(e.Wall)
	dir := "ahead of"
	if d < 0 {
		d, dir = -d, "behind"
	}
	return fmt.Sprintf("now: %s is %s %s the wall clock (%s); the product judges expiry by the wall clock, so the stand-alone simulator accepts a pinned now only within %s of it: %s",
		e.Pinned.UTC().Format(time.RFC3339), readableDuration(d), dir, e.Wall.UTC().Format(time.RFC3339), ClockTolerance, e.Hint)
}

// Hints of ClockError.
const (
	hintWorld = "remove now: from the world, or set it to the current time"
	hintClock = `release the clock ({"wall":true}, hybridflow-sim clock --wall) or pin a time that close`
)

// checkPinned refuses a pinned time more than ClockTolerance from wall; a
// zero time (not pinned) is always fine.
func checkPinned(pinned, wall time.Time, hint string) error {
	if pinned.IsZero() {
		return nil
	}
	d := pinned.Sub(wall)
	if d > ClockTolerance || d < -ClockTolerance {
		return &ClockError{Pinned: pinned, Wall: wall, Hint: hint}
	}
	return nil
}

func checkClock(w *sim.World, wall time.Time) error {
	pinned, _ := w.PinnedNow()
	return checkPinned(pinned, wall, hintWorld)
}

// readableDuration is d in whole seconds, minutes beyond an hour, with
// the days spelled out beyond two.
func readableDuration(d time.Duration) string {
	if d < time.Hour {
		return d.Round(time.Second).String()
	}
	s := d.Round(time.Minute).String()
	if d >= 48*time.Hour {
		s += fmt.Sprintf(" (%.1f days)", d.Hours()/24)
	}
	return s
}

// Clock is the admin API's view of the simulator's clock.
type Clock struct {
	// Now is the time the simulator judges expiry by.
	Now time.Time `json:"now"`
	// Pinned: now is the world's fixed now:, not the wall clock.
	Pinned bool `json:"pinned"`
	// Wall is the simulator's wall clock when it answered.
	Wall time.Time `json:"wall"`
}

// ClockChange is the body of PUT /_sim/clock: {"wall":true} releases the
// clock, {"now":"<RFC 3339>"} pins it (within ClockTolerance of the wall
// clock).
type ClockChange struct {
	Wall bool       `json:"wall,omitempty"`
	Now  *time.Time `json:"now,omitempty"`
}

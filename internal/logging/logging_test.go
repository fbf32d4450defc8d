package logging

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestTemporalAdapterKeepsFields(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	l := NewTemporal(zap.New(core)).With(FieldTenant, "t1")
	l.Info("step done", FieldStep, "auth-servers", "attempt", 2)
	l.Warn("odd", "dangling")
	all := logs.All()
	if len(all) != 2 {
		t.Fatalf("got %d entries", len(all))
	}
	got := all[0].ContextMap()
	if got[FieldTenant] != "t1" || got[FieldStep] != "auth-servers" || got["attempt"] != int64(2) {
		t.Errorf("fields = %v", got)
	}
	if _, ok := all[1].ContextMap()["keyvals"]; !ok {
		t.Errorf("odd keyvals must be kept, got %v", all[1].ContextMap())
	}
}

func TestNewRejectsUnknownLevel(t *testing.T) {
	if _, err := New("loud", false); err == nil {
		t.Fatal("want error")
	}
}

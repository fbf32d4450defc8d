// Package logging builds the product's zap loggers and adapts them to the
// Temporal SDK's log.Logger, so SDK, worker and activity logs land in one
// structured stream with the same field names (tenant, step, workflow_id).
package logging

import (
	"fmt"
	"os"

	"go.temporal.io/sdk/log"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Field names shared by every log line that concerns a tenant or a step.
const (
	FieldTenant     = "tenant"
	FieldStep       = "step"
	FieldWorkflowID = "workflow_id"
	FieldRunID      = "run_id"
	FieldSite       = "site"
)

// New returns a JSON logger at the given level ("debug", "info", "warn",
// "error") writing to stderr; console selects a human-readable encoder.
func New(level string, console bool) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if console {
		encCfg.EncodeLevel = zapcore.CapitalColorLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	} else {
		enc = zapcore.NewJSONEncoder(encCfg)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(os.Stderr), lvl)
	return zap.New(core, zap.AddCaller()), nil
}

// Temporal adapts a zap logger to the SDK's log.Logger. There is no zap
// contrib module for the Go SDK; this is the usual adapter.
type Temporal struct{ z *zap.Logger }

var (
	_ log.Logger          = (*Temporal)(nil)
	_ log.WithLogger      = (*Temporal)(nil)
	_ log.WithSkipCallers = (*Temporal)(nil)
)

// NewTemporal wraps z; caller frames of the SDK's logging helpers are
// skipped so caller fields point at the code that logged.
func NewTemporal(z *zap.Logger) *Temporal {
	return &Temporal{z: z.WithOptions(zap.AddCallerSkip(1))}
}

func (l *Temporal) fields(keyvals []interface{}) []zap.Field {
	if len(keyvals)%2 != 0 {
		return []zap.Field{zap.Any("keyvals", keyvals)}
	}
	fs := make([]zap.Field, 0, len(keyvals)/2)
	for i := 0; i < len(keyvals); i += 2 {
		key, ok := keyvals[i].(string)
		if !ok {
			key = fmt.Sprint(keyvals[i])
		}
		fs = append(fs, zap.Any(key, keyvals[i+1]))
	}
	return fs
}

func (l *Temporal) Debug(msg string, keyvals ...interface{}) { l.z.Debug(msg, l.fields(keyvals)...) }
func (l *Temporal) Info(msg string, keyvals ...interface{})  { l.z.Info(msg, l.fields(keyvals)...) }
func (l *Temporal) Warn(msg string, keyvals ...interface{})  { l.z.Warn(msg, l.fields(keyvals)...) }
func (l *Temporal) Error(msg string, keyvals ...interface{}) { l.z.Error(msg, l.fields(keyvals)...) }

// With returns a logger that adds keyvals to every line.
func (l *Temporal) With(keyvals ...interface{}) log.Logger {
	return &Temporal{z: l.z.With(l.fields(keyvals)...)}
}

// WithCallerSkip adjusts the caller frame for SDK wrappers.
func (l *Temporal) WithCallerSkip(depth int) log.Logger {
	return &Temporal{z: l.z.WithOptions(zap.AddCallerSkip(depth))}
}

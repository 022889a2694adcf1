// Package pionslog passes the logs of pion's libraries (ICE, DTLS, TURN, WebRTC) to log/slog.
// They reach the application's log at --log-level debug: every pion level is logged at
// slog's Debug, pion's own level kept as the attribute "pion_level", the library's scope as
// "pion". (pion's default logger writes errors to stdout, which a headless phone keeps for
// its JSON events.)
package pionslog

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// New returns a pion LoggerFactory that logs to l (slog.Default() when l is nil).
func New(l *slog.Logger) logging.LoggerFactory {
	if l == nil {
		l = slog.Default()
	}
	return factory{l}
}

type factory struct{ l *slog.Logger }

func (f factory) NewLogger(scope string) logging.LeveledLogger {
	return logger{f.l.With("pion", scope)}
}

type logger struct{ l *slog.Logger }

func (g logger) log(level, msg string) {
	g.l.Debug(msg, "pion_level", level)
}

func (g logger) logf(level, format string, args ...any) {
	if g.l.Enabled(context.Background(), slog.LevelDebug) {
		g.l.Debug(fmt.Sprintf(format, args...), "pion_level", level)
	}
}

func (g logger) Trace(msg string)                  { g.log("trace", msg) }
func (g logger) Tracef(format string, args ...any) { g.logf("trace", format, args...) }
func (g logger) Debug(msg string)                  { g.log("debug", msg) }
func (g logger) Debugf(format string, args ...any) { g.logf("debug", format, args...) }
func (g logger) Info(msg string)                   { g.log("info", msg) }
func (g logger) Infof(format string, args ...any)  { g.logf("info", format, args...) }
func (g logger) Warn(msg string)                   { g.log("warn", msg) }
func (g logger) Warnf(format string, args ...any)  { g.logf("warn", format, args...) }
func (g logger) Error(msg string)                  { g.log("error", msg) }
func (g logger) Errorf(format string, args ...any) { g.logf("error", format, args...) }

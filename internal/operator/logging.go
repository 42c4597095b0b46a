package operator

import (
	"fmt"
	"io"
	"strconv"

	"github.com/go-logr/logr"
	"go.uber.org/zap/zapcore"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// NewLogger builds the manager's structured logger.
func NewLogger(o Options, w io.Writer) (logr.Logger, error) {
	lvl, err := parseLevel(o.LogLevel)
	if err != nil {
		return logr.Discard(), fmt.Errorf("--log-level: %w", err)
	}
	opts := []zap.Opts{zap.WriteTo(w), zap.Level(lvl)}
	if o.LogEncoder == "console" {
		opts = append(opts, zap.ConsoleEncoder())
	} else {
		opts = append(opts, zap.JSONEncoder())
	}
	return zap.New(opts...), nil
}

// parseLevel maps "info", "debug" or a logr verbosity 0-5 onto a zap level (logr V(n) is zap -n).
func parseLevel(s string) (zapcore.Level, error) {
	switch s {
	case "", "info":
		return zapcore.InfoLevel, nil
	case "debug":
		return zapcore.DebugLevel, nil
	case "error":
		return zapcore.ErrorLevel, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 5 {
		return 0, fmt.Errorf("want info, debug, error or a number 0-5, got %q", s)
	}
	return zapcore.Level(-n), nil
}

package operator

import (
	"fmt"
	"io"
	"strconv"

	"github.com/go-logr/logr"
	uzap "go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"gopkg.in/natefinch/lumberjack.v2"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// Rotation of --log-file-path, KubeRay's: 500 MB files, 10 old files kept for at most 30 days.
const (
	logFileMaxSizeMB  = 500
	logFileMaxBackups = 10
	logFileMaxAgeDays = 30
)

// NewLogger builds the manager's structured logger writing to w and, with a log file configured,
// to that file too. The returned function flushes and closes the file.
func NewLogger(o Options, w io.Writer) (logr.Logger, func() error, error) {
	noop := func() error { return nil }
	lvl, err := parseLevel(o.LogLevel)
	if err != nil {
		return logr.Discard(), noop, fmt.Errorf("--log-level: %w", err)
	}
	opts := []zap.Opts{zap.WriteTo(w), zap.Level(lvl)}
	if o.LogEncoder == "console" {
		opts = append(opts, zap.ConsoleEncoder())
	} else {
		opts = append(opts, zap.JSONEncoder())
	}
	if o.LogFilePath == "" {
		return zap.New(opts...), noop, nil
	}
	file := &lumberjack.Logger{
		Filename:   o.LogFilePath,
		MaxSize:    logFileMaxSizeMB,
		MaxBackups: logFileMaxBackups,
		MaxAge:     logFileMaxAgeDays,
	}
	// Open it now so that an unwritable path stops the manager instead of losing every line.
	if _, err := file.Write(nil); err != nil {
		return logr.Discard(), noop, fmt.Errorf("opening %s: %w", o.name("log-file-path", "logFile"), err)
	}
	ec := uzap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	enc := zapcore.NewJSONEncoder(ec)
	if o.LogFileEncoder == "console" {
		enc = zapcore.NewConsoleEncoder(ec)
	}
	fileCore := zapcore.NewCore(enc, zapcore.AddSync(file), lvl)
	opts = append(opts, zap.RawZapOpts(uzap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return zapcore.NewTee(c, fileCore)
	})))
	return zap.New(opts...), file.Close, nil
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

// LogSettings logs where the settings came from and what was ignored, as KubeRay does for
// --config and --forced-cluster-upgrade.
func LogSettings(log logr.Logger, o Options) {
	if o.ConfigFile != "" {
		log.Info("Using the config file; KubeRay's flags are ignored", "config", o.ConfigFile, "ignoredFlags", o.IgnoredFlags)
	}
	if o.ForcedClusterUpgrade {
		log.Info("Flag --forced-cluster-upgrade is deprecated and has no effect")
	}
	if o.LogFilePath != "" {
		log.Info("Logging to a file as well", "path", o.LogFilePath, "encoder", o.LogFileEncoder)
	}
	log.Info("Operator version", "version", o.OperatorVersion)
}

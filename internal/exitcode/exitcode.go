// Package exitcode holds the sentinel errors that callers branch on and the one
// mapping from an error to the process exit code (DESIGN.md §5).
//
//	0   ok
//	1   error
//	2   usage or configuration error
//	3   data validation failed
//	4   tracking or registry error
//	5   model did not pass the deployment gate (not deployed)
//	130 interrupted (Ctrl-C, SIGTERM)
package exitcode

import (
	"context"
	"errors"
)

// Exit codes.
const (
	OK          = 0
	Error       = 1
	Usage       = 2
	Validation  = 3
	Tracking    = 4
	Gate        = 5
	Interrupted = 130
)

// Sentinel errors. Wrap them with fmt.Errorf("...: %w", ErrX) so that Code finds them.
var (
	// ErrUsage marks a bad flag, argument or configuration value.
	ErrUsage = errors.New("usage error")
	// ErrValidation marks input data that failed a quality gate.
	ErrValidation = errors.New("data validation failed")
	// ErrTracking marks a failure of the tracking server or model registry.
	ErrTracking = errors.New("tracking error")
	// ErrGate marks a model that did not pass the deployment gate.
	ErrGate = errors.New("deployment gate not passed")
)

// Code maps an error to the process exit code. It is the only such mapping.
func Code(err error) int {
	switch {
	case err == nil:
		return OK
	case errors.Is(err, context.Canceled):
		return Interrupted
	case errors.Is(err, ErrUsage):
		return Usage
	case errors.Is(err, ErrValidation):
		return Validation
	case errors.Is(err, ErrTracking):
		return Tracking
	case errors.Is(err, ErrGate):
		return Gate
	default:
		return Error
	}
}

// Help is the EXIT STATUS section printed by --help.
const Help = `EXIT STATUS
  0    ok
  1    error
  2    usage or configuration error
  3    data validation failed
  4    tracking or registry error
  5    model did not pass the deployment gate (nothing deployed)
  130  interrupted (Ctrl-C or SIGTERM; partial files are removed)`

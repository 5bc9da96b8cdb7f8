package pg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// EnvDSN is the environment variable holding the DSN when the config has none
// (the command layer maps it to db.dsn; library callers get the same rule).
const EnvDSN = "MODAX_DB_DSN"

// ConnectError is a failed connection attempt. Its message names the server,
// database and user and says what went wrong, and never contains the DSN or
// the password.
type ConnectError struct {
	Target string // postgres://user@host:port/database
	Reason string
	Err    error // the driver's error (may quote connection details: do not print it)
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("connect to %s: %s", e.Target, e.Reason)
}

// Unwrap gives errors.Is access to the cause (context.Canceled, ...).
func (e *ConnectError) Unwrap() error { return e.Err }

// dsn returns the configured DSN, else $MODAX_DB_DSN, else "" (libpq's PG*
// environment variables: PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, ...).
func (c Config) dsn() string {
	if c.DSN != "" {
		return c.DSN
	}
	return os.Getenv(EnvDSN)
}

// PoolConfig parses the connection settings of c. Sessions run in UTC and
// identify themselves as modax-ml.
func PoolConfig(c Config) (*pgxpool.Config, error) {
	pc, err := pgxpool.ParseConfig(c.dsn())
	if err != nil {
		// pgx quotes the (best-effort redacted) DSN in its message: give only
		// the reason.
		reason := "cannot parse it"
		var pce *pgconn.ParseConfigError
		if errors.As(err, &pce) && pce.Unwrap() != nil {
			reason = pce.Unwrap().Error()
		}
		reason = Scrub(reason, c.dsn())
		return nil, fmt.Errorf("invalid database DSN (db.dsn, %s or PG* variables): %s", EnvDSN, reason)
	}
	rp := pc.ConnConfig.RuntimeParams
	rp["timezone"] = "UTC"
	if rp["application_name"] == "" {
		rp["application_name"] = "modax-ml"
	}
	if pc.ConnConfig.ConnectTimeout == 0 {
		pc.ConnConfig.ConnectTimeout = 15 * time.Second
	}
	pc.MaxConns = 4
	return pc, nil
}

// Connect opens a connection pool and checks that the server answers. Errors
// are *ConnectError with a clear reason (wrong password, unknown database,
// server down, ...).
func Connect(ctx context.Context, c Config) (*pgxpool.Pool, error) {
	pc, err := PoolConfig(c)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, connectError(ctx, pc.ConnConfig, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, connectError(ctx, pc.ConnConfig, err)
	}
	return pool, nil
}

// Target describes where cfg connects, without the password.
func Target(cfg *pgx.ConnConfig) string {
	host := cfg.Host
	if strings.HasPrefix(host, "/") {
		host = "[" + host + "]"
	}
	return fmt.Sprintf("postgres://%s@%s/%s", cfg.User, net.JoinHostPort(host, strconv.Itoa(int(cfg.Port))), cfg.Database)
}

func connectError(ctx context.Context, cfg *pgx.ConnConfig, err error) error {
	e := &ConnectError{Target: Target(cfg), Err: err}
	var pgErr *pgconn.PgError
	var netErr net.Error
	switch {
	case ctx.Err() != nil:
		e.Reason = "interrupted"
		e.Err = ctx.Err()
	case errors.As(err, &pgErr) && pgErr.Code == "28P01":
		e.Reason = "password authentication failed (check the password in db.dsn, " + EnvDSN + " or PGPASSWORD)"
	case errors.As(err, &pgErr) && pgErr.Code == "28000":
		e.Reason = "authentication rejected: " + pgErr.Message
	case errors.As(err, &pgErr) && pgErr.Code == "3D000":
		e.Reason = fmt.Sprintf("database %q does not exist", cfg.Database)
	case errors.As(err, &pgErr):
		e.Reason = pgErr.Message + " (SQLSTATE " + pgErr.Code + ")"
	case errors.Is(err, syscall.ECONNREFUSED):
		e.Reason = "connection refused: is the database server running and listening there?"
	case errors.As(err, &netErr) && netErr.Timeout(), errors.Is(err, context.DeadlineExceeded):
		e.Reason = "timed out: is the host reachable?"
	case errors.Is(err, syscall.ENOENT):
		e.Reason = "no server socket there: is the database server running?"
	default:
		e.Reason = innermost(err)
	}
	if cfg.Password != "" {
		e.Reason = strings.ReplaceAll(e.Reason, cfg.Password, "xxxxx")
	}
	return e
}

// innermost returns the message of the deepest wrapped error (without the
// driver's prefix quoting the connection settings).
func innermost(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err.Error()
		}
		err = u
	}
}

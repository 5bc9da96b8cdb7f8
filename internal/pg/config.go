// Package pg holds the PostgreSQL settings and helpers shared by collect, db
// and monitor: connection from config or libpq environment, quoted identifiers.
package pg

// Config names the database and the tables modax-ml reads and writes.
type Config struct {
	// DSN is a libpq connection string or URL. Empty: libpq's PG* environment
	// variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, ...).
	DSN             string `yaml:"dsn"`
	Tenant          string `yaml:"tenant"`
	SensorTable     string `yaml:"sensor_table"`
	FailureTable    string `yaml:"failure_table"`
	PredictionTable string `yaml:"prediction_table"`
	// MonitorTable receives monitor --to-db's results (empty:
	// DefaultMonitorTable).
	MonitorTable string   `yaml:"monitor_table"`
	Sensors      []string `yaml:"sensors"`
	// TimescaleDB is the mode of db migrate: auto (hypertables when the
	// extension is available), on (require it) or off (plain tables).
	TimescaleDB string `yaml:"timescaledb"`
}

// DefaultMonitorTable is db.monitor_table's default.
const DefaultMonitorTable = "monitor_results"

// MonitorTableName is db.monitor_table, DefaultMonitorTable when unset.
func (c Config) MonitorTableName() string {
	if c.MonitorTable == "" {
		return DefaultMonitorTable
	}
	return c.MonitorTable
}

// DefaultSensors are the design's sensor columns.
var DefaultSensors = []string{"current_mean", "vibration_x_mean", "vibration_y_mean", "vibration_z_mean", "temperature_mean"}

// DefaultConfig returns the design's table names and sensors.
func DefaultConfig() Config {
	return Config{
		Tenant:          "default",
		SensorTable:     "sensor_data",
		FailureTable:    "failure_events",
		PredictionTable: "rul_predictions",
		MonitorTable:    DefaultMonitorTable,
		Sensors:         append([]string(nil), DefaultSensors...),
		TimescaleDB:     "auto",
	}
}

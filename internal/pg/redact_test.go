package pg

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestRedact covers every DSN form: each case's secret must be gone from the
// redacted text, and what is not secret must stay.
func TestRedact(t *testing.T) {
	for _, tc := range []struct {
		name, dsn, want string
		secrets         []string
	}{
		{"url password", "postgres://alice:s3cret@db:5432/modax", "postgres://alice:xxxxx@db:5432/modax", []string{"s3cret"}},
		{"url sslpassword", "postgres://alice@db/modax?sslmode=verify-full&sslpassword=keypass&sslkey=/k.pem",
			"postgres://alice@db/modax?sslmode=verify-full&sslpassword=xxxxx&sslkey=/k.pem", []string{"keypass"}},
		{"url password in query", "postgresql://db/modax?user=alice&password=qpw", "postgresql://db/modax?user=alice&password=xxxxx", []string{"qpw"}},
		{"url escaped", "postgres://alice:p%40ss%2Fw@db/modax?sslpassword=a%26b", "postgres://alice:xxxxx@db/modax?sslpassword=xxxxx", []string{"p@ss/w", "a&b"}},
		{"url encoded key", "postgres://db/modax?ssl%70assword=enc", "postgres://db/modax?ssl%70assword=xxxxx", []string{"enc"}},
		{"kv plain", "host=db user=alice password=s3cret dbname=modax", "host=db user=alice password=xxxxx dbname=modax", []string{"s3cret"}},
		{"kv spaces around =", "host=db password = s3cret dbname=modax", "host=db password = xxxxx dbname=modax", []string{"s3cret"}},
		{"kv quoted", "host=db password='with space' dbname=modax", "host=db password=xxxxx dbname=modax", []string{"with space"}},
		{"kv quoted escapes", `host=db password='it\'s a \\ secret' dbname=modax`, "host=db password=xxxxx dbname=modax", []string{`it's a \ secret`}},
		{"kv unquoted backslash", `host=db password=back\ slash dbname=modax`, "host=db password=xxxxx dbname=modax", []string{"back slash"}},
		{"kv sslpassword", "host=db sslkey=/k.pem sslpassword=keypass", "host=db sslkey=/k.pem sslpassword=xxxxx", []string{"keypass"}},
		{"kv upper case key", "host=db PASSWORD=s3cret", "host=db PASSWORD=xxxxx", []string{"s3cret"}},
		{"kv no secret", "host=db dbname=modax", "host=db dbname=modax", nil},
		{"kv empty quoted", "host=db password=''", "host=db password=xxxxx", nil},
		{"kv quoted, next key right after the quote", "host=db password='p w'user=bob", "host=db password=xxxxx user=bob", []string{"p w"}},
		{"kv unterminated quote", "host=db password='never closed", unparseable, nil},
		{"kv no =", "host=db s3cret", unparseable, nil},
		{"bad url", "postgres://alice:pw@db:port/x\x7f", unparseable, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Redact(tc.dsn)
			if got != tc.want {
				t.Errorf("Redact(%q) = %q, want %q", tc.dsn, got, tc.want)
			}
			for _, s := range tc.secrets {
				if strings.Contains(got, s) {
					t.Errorf("Redact(%q) = %q still holds %q", tc.dsn, got, s)
				}
			}
			if got := Secrets(tc.dsn); len(got) != len(tc.secrets) {
				t.Errorf("Secrets(%q) = %q, want %q", tc.dsn, got, tc.secrets)
			} else {
				for i := range got {
					if got[i] != tc.secrets[i] {
						t.Errorf("Secrets(%q)[%d] = %q, want %q", tc.dsn, i, got[i], tc.secrets[i])
					}
				}
			}
		})
	}
}

// TestSecretsAsPgx: the tokenizer reads a key=value password as pgx (the
// driver that connects) does, escapes included.
func TestSecretsAsPgx(t *testing.T) {
	for _, dsn := range []string{
		`host=db password='it\'s a \\ secret'`,
		`host=db password=back\ slash`,
		`host=db password = 'a b'`,
		"postgres://alice:p%40ss@db/modax",
	} {
		cfg, err := pgconn.ParseConfig(dsn)
		if err != nil {
			t.Fatalf("pgx cannot parse %q: %v", dsn, err)
		}
		if s := Secrets(dsn); len(s) != 1 || s[0] != cfg.Password {
			t.Errorf("Secrets(%q) = %q, pgx reads the password %q", dsn, s, cfg.Password)
		}
	}
}

func TestSecretsFromEnv(t *testing.T) {
	t.Setenv("PGPASSWORD", "envpw")
	t.Setenv("PGSSLPASSWORD", "envkey")
	if got := Scrub("auth failed for envpw with key envkey", ""); strings.Contains(got, "envpw") || strings.Contains(got, "envkey") {
		t.Errorf("Scrub left a PG* secret: %q", got)
	}
}

// FuzzRedact: any DSN, no panic, and what Redact prints reads back with
// every secret parameter at the placeholder.
func FuzzRedact(f *testing.F) {
	for _, s := range []string{
		"postgres://alice:s3cret@db:5432/modax?sslpassword=k",
		`host=db password='it\'s' sslpassword=x\ y`,
		"host=db password=", "password='", "=", "a=b\\",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dsn string) {
		got := Redact(dsn)
		if got == unparseable || got == "" {
			return
		}
		parse := kvParams
		if strings.Contains(dsn, "://") {
			parse = urlParams // the form of the input, however the URL prints
		}
		ps, ok := parse(got)
		if !ok {
			t.Fatalf("Redact(%q) = %q, which does not parse", dsn, got)
		}
		for _, p := range ps {
			if isSecret(p.key) && p.val != redacted {
				t.Fatalf("Redact(%q) = %q: %s is %q", dsn, got, p.key, p.val)
			}
		}
	})
}

// FuzzPoolConfig: any DSN (db.dsn, MODAX_DB_DSN) parses or is refused with an
// error that quotes none of its secrets, never a panic.
func FuzzPoolConfig(f *testing.F) {
	for _, s := range []string{
		"postgres://alice:s3cret@db:5432/modax?sslmode=disable&sslpassword=k3yk3y",
		"postgres://alice:s3cret@db:99999/modax",
		"postgresql://[::1]:5432,db2:5433/modax?target_session_attrs=read-write&password=pw2pw2",
		`host=db password='it\'s secret' sslpassword=x\ yyyy connect_timeout=abc`,
		"host=/tmp port=5432,5433 password=hunter22 dbname=x sslmode=verify-full sslrootcert=/nope",
		"user=a password=hunter22 statement_cache_capacity=-1",
		"postgres://%zz:hunter22@db/x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dsn string) {
		if dsn == "" {
			return // the PG* environment, not the input
		}
		_, err := PoolConfig(Config{DSN: dsn})
		if err == nil {
			return
		}
		for _, s := range Secrets(dsn) {
			if len(s) >= 4 && strings.Contains(err.Error(), s) {
				t.Fatalf("PoolConfig(%q): error quotes the secret %q: %v", dsn, s, err)
			}
		}
	})
}

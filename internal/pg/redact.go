package pg

import (
	"net/url"
	"os"
	"strings"
)

// redacted replaces a secret's value.
const redacted = "xxxxx"

// unparseable is what Redact returns for a DSN it cannot split into
// parameters: nothing of it is shown, since any part could be a secret.
const unparseable = "<unparseable DSN redacted>"

// isSecret reports whether the libpq parameter key holds a secret: password,
// sslpassword (the passphrase of the client key), and, to be safe with
// parameters libpq may add, any key naming a password, passphrase, secret or
// token.
func isSecret(key string) bool {
	k := strings.ToLower(key)
	for _, w := range []string{"password", "passphrase", "secret", "token"} {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// param is one key=value of a DSN; [start, end) is the value's span in the
// DSN as written (quotes and escapes included).
type param struct {
	key, val   string
	start, end int
}

// params splits a DSN into its parameters: the URL form
// (postgres://user:password@host/db?sslpassword=…; the user info's password
// is the parameter "password") or libpq's key=value form, with its quoting
// rules (a value in single quotes may hold spaces; a backslash escapes the
// next character in quoted and unquoted values alike). ok is false when the
// DSN is neither.
func params(dsn string) (ps []param, ok bool) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") || strings.Contains(dsn, "://") {
		return urlParams(dsn)
	}
	return kvParams(dsn)
}

func kvParams(s string) ([]param, bool) {
	var ps []param
	i := 0
	space := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' }
	for {
		for i < len(s) && space(s[i]) {
			i++
		}
		if i == len(s) {
			return ps, true
		}
		ks := i
		for i < len(s) && s[i] != '=' && !space(s[i]) {
			i++
		}
		key := s[ks:i]
		for i < len(s) && space(s[i]) {
			i++
		}
		if key == "" || i == len(s) || s[i] != '=' {
			return nil, false
		}
		i++
		for i < len(s) && space(s[i]) {
			i++
		}
		vs := i
		var val strings.Builder
		if i < len(s) && s[i] == '\'' {
			i++
			closed := false
			for i < len(s) {
				c := s[i]
				if c == '\\' && i+1 < len(s) {
					val.WriteByte(s[i+1])
					i += 2
					continue
				}
				i++
				if c == '\'' {
					closed = true
					break
				}
				val.WriteByte(c)
			}
			if !closed {
				return nil, false
			}
		} else {
			for i < len(s) && !space(s[i]) {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				val.WriteByte(s[i])
				i++
			}
		}
		ps = append(ps, param{key: key, val: val.String(), start: vs, end: i})
	}
}

func urlParams(dsn string) ([]param, bool) {
	u, err := url.Parse(dsn)
	if err != nil {
		return nil, false
	}
	var ps []param
	if pw, ok := u.User.Password(); ok {
		ps = append(ps, param{key: "password", val: pw})
	}
	for _, kv := range strings.Split(u.RawQuery, "&") {
		k, v, _ := strings.Cut(kv, "=")
		ku, err1 := url.QueryUnescape(k)
		vu, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			return nil, false
		}
		if ku != "" {
			ps = append(ps, param{key: ku, val: vu})
		}
	}
	return ps, true
}

// Redact hides every secret parameter of a DSN (see isSecret) in the URL and
// the key=value form; everything else is kept as written. It is what
// `config show`, logs, errors and run records print.
func Redact(dsn string) string {
	if dsn == "" {
		return ""
	}
	ps, ok := params(dsn)
	if !ok {
		return unparseable
	}
	if !strings.Contains(dsn, "://") {
		var b strings.Builder
		last := 0
		for _, p := range ps {
			if isSecret(p.key) {
				b.WriteString(dsn[last:p.start])
				b.WriteString(redacted)
				if p.end < len(dsn) && !strings.ContainsRune(" \t\n\r\f\v", rune(dsn[p.end])) {
					// A quoted value ends at its quote, and libpq reads the
					// next parameter right after it: the unquoted
					// placeholder needs a space to end there too.
					b.WriteByte(' ')
				}
				last = p.end
			}
		}
		b.WriteString(dsn[last:])
		return b.String()
	}
	u, _ := url.Parse(dsn)
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), redacted)
	}
	if u.RawQuery != "" {
		parts := strings.Split(u.RawQuery, "&")
		for i, kv := range parts {
			k, _, _ := strings.Cut(kv, "=")
			if ku, _ := url.QueryUnescape(k); isSecret(ku) {
				parts[i] = k + "=" + redacted
			}
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}

// Secrets returns the secret values of a DSN, and of libpq's environment
// (PGPASSWORD, PGSSLPASSWORD) when the DSN is empty, so that an error message
// quoting one can be scrubbed.
func Secrets(dsn string) []string {
	var out []string
	if dsn == "" {
		for _, e := range []string{"PGPASSWORD", "PGSSLPASSWORD"} {
			if v := os.Getenv(e); v != "" {
				out = append(out, v)
			}
		}
		return out
	}
	ps, _ := params(dsn)
	for _, p := range ps {
		if isSecret(p.key) && p.val != "" {
			out = append(out, p.val)
		}
	}
	return out
}

// Scrub replaces every secret of dsn (see Secrets) in msg.
func Scrub(msg, dsn string) string {
	for _, s := range Secrets(dsn) {
		msg = strings.ReplaceAll(msg, s, redacted)
	}
	return msg
}

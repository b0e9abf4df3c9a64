package history

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// Table is the PostgreSQL table of the history; Postgres creates it when
// it is missing.
const Table = "darktime_history"

// schemaSQL creates the table. The columns beside the record are what
// queries select on; the record (JSONB) is the truth.
const schemaSQL = `CREATE TABLE IF NOT EXISTS ` + Table + ` (
	id       bigserial PRIMARY KEY,
	run_id   text NOT NULL,
	target   text NOT NULL DEFAULT '',
	scenario text NOT NULL,
	run_time timestamptz NOT NULL,
	commit   text NOT NULL DEFAULT '',
	verdict  text NOT NULL,
	record   jsonb NOT NULL,
	UNIQUE (run_id, target)
);
CREATE INDEX IF NOT EXISTS ` + Table + `_series ON ` + Table + ` (scenario, target, id)`

// schemaLock is the advisory lock key taken while creating the table:
// two first runs at once must not race on CREATE TABLE.
const schemaLock = 0x6461726b74696d65 // "darktime"

// connectTimeout bounds connecting to the database.
const connectTimeout = 10 * time.Second

// Postgres is a history in a PostgreSQL table (Table), for teams that
// keep their runs in a database: one row a record, its JSON in a JSONB
// column. Every query is parameterised.
type Postgres struct {
	conn *pgx.Conn
}

// OpenPostgres connects to the database at url (postgres://…, with pgx's
// parameters: sslmode, connect_timeout, …) and creates the table if it is
// missing. Errors wrap ErrInput.
func OpenPostgres(ctx context.Context, url string) (*Postgres, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		// pgx's message masks the password it quotes.
		return nil, fmt.Errorf("%w: not a PostgreSQL URL (postgres://user@host:port/db?sslmode=…): %v", ErrInput, err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = connectTimeout
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: connect to PostgreSQL at %s:%d: %w", ErrInput, cfg.Host, cfg.Port, err)
	}
	p := &Postgres{conn: conn}
	if err := p.createTable(ctx); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("%w: create the table %s: %w", ErrInput, Table, err)
	}
	return p, nil
}

func (p *Postgres) createTable(ctx context.Context) error {
	tx, err := p.conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(schemaLock)); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, schemaSQL); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// Close closes the connection.
func (p *Postgres) Close() error { return p.conn.Close(context.Background()) }

// Append inserts the record; a row of the same run and target already
// there is ErrDuplicate.
func (p *Postgres) Append(ctx context.Context, r Record) error {
	b, err := r.Marshal()
	if err != nil {
		return err
	}
	tag, err := p.conn.Exec(ctx, `INSERT INTO `+Table+` (run_id, target, scenario, run_time, commit, verdict, record)
		VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb) ON CONFLICT (run_id, target) DO NOTHING`,
		r.RunID, r.Target, r.Scenario, r.Time, r.Commit, r.Verdict, string(b))
	if err != nil {
		return fmt.Errorf("append to PostgreSQL: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: run %s (target %q) in %s", ErrDuplicate, r.RunID, r.Target, Table)
	}
	return nil
}

// List returns the records that match f, oldest first.
func (p *Postgres) List(ctx context.Context, f Filter) ([]Record, error) {
	var limit *int64
	if f.Limit > 0 {
		l := int64(f.Limit)
		limit = &l
	}
	rows, err := p.conn.Query(ctx, `SELECT id, record::text FROM `+Table+`
		WHERE ($1 = '' OR scenario = $1) AND ($2 = '' OR target = $2) AND ($3 = '' OR record->'metrics' ? $3)
		ORDER BY id DESC LIMIT $4`, f.Scenario, f.Target, f.Metric, limit)
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %w", ErrInput, Table, err)
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		var id int64
		var text string
		if err := rows.Scan(&id, &text); err != nil {
			return nil, fmt.Errorf("%w: read %s: %w", ErrInput, Table, err)
		}
		r, err := ParseRecord([]byte(text))
		if err != nil {
			return nil, fmt.Errorf("%s row %d: %w", Table, id, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%w: read %s: %w", ErrInput, Table, err)
	}
	slices.Reverse(out)
	return out, nil
}

package postgres_test

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	plugin "github.com/hashicorp/go-plugin"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/datapulse/datapulse/plugins/builtin/postgres"
	"github.com/datapulse/datapulse/plugins/host"
	connectorv1 "github.com/datapulse/datapulse/plugins/proto/connector/v1"
	"github.com/datapulse/datapulse/plugins/sdk"
	"github.com/datapulse/datapulse/plugins/sdk/wire"
)

// BenchmarkScan1M reads 1,000,000 rows × 5 columns (int8, text, float8,
// timestamptz, bool): in-process with the connector's own pgx-to-Arrow code
// (ScanRecords), and through the connector's gRPC adapter over go-plugin's
// in-process transport (a Unix socket, no TLS), decoding the IPC stream.
// The subprocess benchmark with AutoMTLS belongs to the host.
//
//	DATAPULSE_TEST_POSTGRES_URL=… go test -run '^$' -bench Scan1M -benchtime 3x ./plugins/builtin/postgres/
func BenchmarkScan1M(b *testing.B) {
	e := setup(b)
	ctx := context.Background()
	const n = 1_000_000
	if _, err := e.admin.Exec(ctx, `CREATE TABLE `+e.schema+`.bench AS SELECT g::int8 AS id, 'name ' || g AS txt, g * 0.5 AS f,
		now() - g * interval '1 second' AS ts, g % 2 = 0 AS ok FROM generate_series(1, $1) g`, n); err != nil {
		b.Fatal(err)
	}
	if _, err := e.admin.Exec(ctx, `GRANT SELECT ON `+e.schema+`.bench TO `+e.role); err != nil {
		b.Fatal(err)
	}
	e.admin.Exec(ctx, `ANALYZE `+e.schema+`.bench`)
	sql := "SELECT id, txt, f, ts, ok FROM " + e.schema + ".bench"

	b.Run("pgx-bare", func(b *testing.B) {
		// The ceiling: native pgx scanning each row into Go values.
		cfg, err := pgxpool.ParseConfig("host=" + e.host + " port=" + strconv.Itoa(e.port) + " dbname=" + e.database + " user=" + e.role + " password='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(e.password) + "' sslmode=disable")
		if err != nil {
			b.Fatal(err)
		}
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		defer pool.Close()
		b.ResetTimer()
		for range b.N {
			rows, err := pool.Query(ctx, sql)
			if err != nil {
				b.Fatal(err)
			}
			var (
				sum, id int64
				txt     string
				f       float64
				ts      time.Time
				ok      bool
			)
			for rows.Next() {
				if err := rows.Scan(&id, &txt, &f, &ts, &ok); err != nil {
					b.Fatal(err)
				}
				sum += id
			}
			rows.Close()
			if rows.Err() != nil || sum != n*(n+1)/2 {
				b.Fatalf("sum %d, %v", sum, rows.Err())
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
	})

	b.Run("subprocess", func(b *testing.B) {
		// The real path: a connector process started and supervised by the
		// host (go-plugin, AutoMTLS, checksum-pinned), results validated and
		// decoded by the host.
		dir := b.TempDir()
		pdir := filepath.Join(dir, "postgres")
		if err := os.MkdirAll(pdir, 0o755); err != nil {
			b.Fatal(err)
		}
		exe := filepath.Join(pdir, "pgserve")
		if out, err := exec.Command("go", "build", "-o", exe, "./internal/pgserve").CombinedOutput(); err != nil {
			b.Fatalf("build: %v\n%s", err, out)
		}
		sum256, err := host.Checksum(exe)
		if err != nil {
			b.Fatal(err)
		}
		man, _ := json.Marshal(map[string]any{"name": "postgres", "version": "1.0.0", "executable": "pgserve", "sha256": sum256, "protocol_version": 1})
		if err := os.WriteFile(filepath.Join(pdir, "manifest.json"), man, 0o644); err != nil {
			b.Fatal(err)
		}
		h, err := host.New(ctx, host.Options{PluginDir: dir, MaxRows: 2 * n, MaxBytes: 4 << 30, QueryTimeout: 5 * time.Minute})
		if err != nil {
			b.Fatal(err)
		}
		defer h.Close()
		ds := host.DataSource{ID: "bench", Version: 1, Config: []byte(e.config(nil)), Secrets: e.secrets()}
		b.ResetTimer()
		for range b.N {
			res, err := h.Query(ctx, "postgres", ds, host.Query{SQL: sql})
			if err != nil {
				b.Fatal(err)
			}
			var sum int64
			for {
				rec, err := res.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				for _, v := range rec.Column(0).(*array.Int64).Int64Values() {
					sum += v
				}
				rec.Release()
			}
			res.Close()
			if sum != n*(n+1)/2 {
				b.Fatalf("sum %d", sum)
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
	})

	b.Run("in-process", func(b *testing.B) {
		cfg, err := pgxpool.ParseConfig("host=" + e.host + " port=" + strconv.Itoa(e.port) + " dbname=" + e.database + " user=" + e.role + " password='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(e.password) + "' sslmode=disable")
		if err != nil {
			b.Fatal(err)
		}
		cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		defer pool.Close()
		b.ResetTimer()
		for range b.N {
			rows, err := pool.Query(ctx, sql)
			if err != nil {
				b.Fatal(err)
			}
			var sum int64
			schema := postgres.Schema(rows.FieldDescriptions())
			err = postgres.ScanRecords(rows, schema, memory.DefaultAllocator, sdk.DefaultBatchMaxRows, sdk.DefaultBatchMaxBytes, func(rec arrow.RecordBatch) error {
				defer rec.Release()
				for _, v := range rec.Column(0).(*array.Int64).Int64Values() {
					sum += v
				}
				return nil
			})
			rows.Close()
			if err != nil || sum != n*(n+1)/2 {
				b.Fatalf("sum %d, %v", sum, err)
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
	})

	b.Run("connector-grpc", func(b *testing.B) {
		client, _ := plugin.TestPluginGRPCConn(b, false, map[string]plugin.Plugin{sdk.PluginName: &sdk.GRPCPlugin{Impl: postgres.New()}})
		defer client.Close()
		raw, err := client.Dispense(sdk.PluginName)
		if err != nil {
			b.Fatal(err)
		}
		cc := raw.(connectorv1.ConnectorClient)
		ds := &connectorv1.DataSourceContext{DatasourceId: "bench", ConfigVersion: 1, ConfigJson: []byte(e.config(nil)), Secrets: e.secrets()}
		b.ResetTimer()
		for range b.N {
			stream, err := cc.Query(ctx, &connectorv1.QueryRequest{Ds: ds, Sql: sql})
			if err != nil {
				b.Fatal(err)
			}
			rs := wire.NewResultStream(stream)
			rd, err := ipc.NewReader(rs)
			if err != nil {
				b.Fatal(err)
			}
			var sum int64
			for rd.Next() {
				for _, v := range rd.RecordBatch().Column(0).(*array.Int64).Int64Values() {
					sum += v
				}
			}
			if err := rd.Err(); err != nil {
				b.Fatal(err)
			}
			rd.Release()
			if err := rs.Drain(); err != nil || sum != n*(n+1)/2 {
				b.Fatalf("sum %d, %v", sum, err)
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
}

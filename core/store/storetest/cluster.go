package storetest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Cluster is a throw-away PostgreSQL server a fault test starts, stops and
// restarts at will: never the shared server other suites use. It runs
// Debian's binaries from /usr/lib/postgresql/<version>/bin in a temporary
// directory on a free port, as the postgres user when the test runs as root.
type Cluster struct {
	tb      testing.TB
	bin     string
	dir     string // data directory (also the socket directory)
	Port    int
	asUser  string // "" or the user to run the binaries as
	mu      sync.Mutex
	running bool
}

// clusterBin finds the newest Debian PostgreSQL bin directory with initdb
// and pg_ctl, or "".
func clusterBin() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if fileExists(filepath.Join(d, "initdb")) && fileExists(filepath.Join(d, "pg_ctl")) {
			return d
		}
	}
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// StartCluster initialises and starts a private cluster, or skips the test
// when the PostgreSQL server binaries are not installed. The cluster is
// stopped and its directory removed when the test ends, whatever happened.
func StartCluster(tb testing.TB) *Cluster {
	tb.Helper()
	bin := clusterBin()
	if bin == "" {
		tb.Skip("fault test skipped: PostgreSQL server binaries not found in /usr/lib/postgresql/<version>/bin (install postgresql; CI has them)")
	}
	c := &Cluster{tb: tb, bin: bin}
	if os.Geteuid() == 0 {
		// initdb refuses to run as root.
		if _, err := user.Lookup("postgres"); err != nil {
			tb.Skip("fault test skipped: running as root and there is no postgres user to run the cluster as")
		}
		if _, err := exec.LookPath("runuser"); err != nil {
			tb.Skip("fault test skipped: running as root without runuser")
		}
		c.asUser = "postgres"
	}
	parent, err := os.MkdirTemp("", "datapulse-pgcluster-")
	if err != nil {
		tb.Fatal(err)
	}
	c.dir = filepath.Join(parent, "data")
	tb.Cleanup(func() {
		c.stop("immediate") // best effort; removes nothing it did not create
		os.RemoveAll(parent)
	})
	if c.asUser != "" {
		// The parent only needs to be traversable; the data directory is the postgres user's.
		if err := os.Chmod(parent, 0o755); err != nil {
			tb.Fatal(err)
		}
		if out, err := exec.Command("install", "-d", "-o", c.asUser, "-m", "0700", c.dir).CombinedOutput(); err != nil {
			tb.Fatalf("create the cluster directory: %v: %s", err, out)
		}
	}
	c.Port = freePort(tb)
	if out, err := c.run(60*time.Second, "initdb", "-D", c.dir, "--auth=trust", "-U", "postgres", "-E", "UTF8", "--no-sync"); err != nil {
		tb.Fatalf("initdb: %v\n%s", err, out)
	}
	c.Start()
	return c
}

func freePort(tb testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func (c *Cluster) run(timeout time.Duration, prog string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	path := filepath.Join(c.bin, prog)
	var cmd *exec.Cmd
	if c.asUser != "" {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", c.asUser, "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	cmd.Dir = os.TempDir()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

// URL is the cluster's postgres database as a URL.
func (c *Cluster) URL() string { return c.DatabaseURL("postgres") }

// DatabaseURL names database db on the cluster.
func (c *Cluster) DatabaseURL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.Port, db)
}

// Start starts the server and returns once it accepts connections.
func (c *Cluster) Start() {
	c.tb.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100", c.Port, c.dir)
	if out, err := c.run(60*time.Second, "pg_ctl", "-D", c.dir, "-w", "-t", "50", "-l", filepath.Join(c.dir, "server.log"), "-o", opts, "start"); err != nil {
		c.tb.Fatalf("pg_ctl start: %v\n%s", err, out)
	}
	c.running = true
}

// Stop stops the server with pg_ctl -m fast (sessions are terminated) and
// returns once it is down.
func (c *Cluster) Stop() {
	c.tb.Helper()
	if out, err := c.stop("fast"); err != nil {
		c.tb.Fatalf("pg_ctl stop: %v\n%s", err, out)
	}
}

func (c *Cluster) stop(mode string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running {
		return nil, nil
	}
	out, err := c.run(60*time.Second, "pg_ctl", "-D", c.dir, "-w", "-t", "50", "-m", mode, "stop")
	if err == nil {
		c.running = false
	}
	return out, err
}

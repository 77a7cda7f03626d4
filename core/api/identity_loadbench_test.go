package api_test

// Login storm (finding A4): peak memory of a real API server process while
// 500 clients log in at once, with the production argon2id parameters
// (19 MiB per hash). Run it alone:
//
//	go test ./core/api -run '^$' -bench BenchmarkLoginStorm -benchtime=1x
//
// The server runs in a child process (this test binary re-executed as
// TestLoginStormServer) over a fresh SQLite database, so its peak RSS
// (VmHWM, reset just before the storm) is the server's alone. Every login
// uses its own unknown email and the per-address limit is lifted: each
// request reaches argon2id (the dummy hash that equalises timing), as from an
// attacker with many addresses. Knobs (environment):
//
//	DATAPULSE_LOGIN_STORM_N       parallel logins (default 500)
//	DATAPULSE_LOGIN_STORM_HASHES  MaxConcurrentHashes in the server (default GOMAXPROCS; a large value shows the unbounded behaviour)
//
// Reported: peak-RSS-MB (the target is ≤ 200), idle-RSS-MB before the storm,
// and how many logins were checked (401) or turned away (429, Retry-After).

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/datapulse/datapulse/core/api"
	"github.com/datapulse/datapulse/core/identity"
	"github.com/datapulse/datapulse/core/store/storetest"
	"github.com/datapulse/datapulse/policy"
)

const stormServeEnv = "DATAPULSE_LOGIN_STORM_SERVE"

// TestLoginStormServer is the child process of BenchmarkLoginStorm; it is
// skipped in a normal test run.
func TestLoginStormServer(t *testing.T) {
	if os.Getenv(stormServeEnv) != "1" {
		t.Skip("child process of BenchmarkLoginStorm")
	}
	st := storetest.Migrated(t, storetest.Targets()[0])
	hashes, _ := strconv.Atoi(os.Getenv("DATAPULSE_LOGIN_STORM_HASHES"))
	id, err := identity.New(st.Client, identity.Options{
		SigningKey: signingKey, Argon2: identity.DefaultArgon2, Facts: policy.NewFacts(policy.RoleEditor),
		ClientBurst: 1 << 30, MaxConcurrentHashes: hashes,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := api.New(api.Deps{Identity: id, Store: st, Version: "storm", BodyLimit: bodyLimit, RequestTimeout: 30 * time.Second})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln) //nolint:errcheck // ends with the process
	fmt.Printf("LISTEN %s\n", ln.Addr())
	io.Copy(io.Discard, os.Stdin) //nolint:errcheck // the parent closes stdin to stop us
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(ctx) //nolint:errcheck
}

// procStatusKB reads a field (VmRSS, VmHWM) of /proc/PID/status in KiB.
func procStatusKB(pid int, field string) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

func BenchmarkLoginStorm(b *testing.B) {
	n := 500
	if v, err := strconv.Atoi(os.Getenv("DATAPULSE_LOGIN_STORM_N")); err == nil && v > 0 {
		n = v
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestLoginStormServer$", "-test.count=1", "-test.v=false")
	cmd.Env = append(os.Environ(), stormServeEnv+"=1", storetest.PostgresEnv+"=")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill() //nolint:errcheck // our own child
			<-done
		}
	}()
	sc := bufio.NewScanner(stdout)
	base := ""
	for sc.Scan() {
		if addr, ok := strings.CutPrefix(sc.Text(), "LISTEN "); ok {
			base = "http://" + addr
			break
		}
	}
	if base == "" {
		b.Fatal("the server process did not start")
	}
	go io.Copy(io.Discard, stdout) //nolint:errcheck
	pid := cmd.Process.Pid

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: 0}, Timeout: time.Minute}
	login := func(email string) (int, error) {
		res, err := client.Post(base+"/api/v1/auth/login", "application/json",
			strings.NewReader(`{"email":"`+email+`","password":"not the password at all"}`))
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, res.Body) //nolint:errcheck
		res.Body.Close()
		if res.StatusCode == http.StatusTooManyRequests && res.Header.Get("Retry-After") == "" {
			return res.StatusCode, fmt.Errorf("429 without Retry-After")
		}
		return res.StatusCode, nil
	}
	// Warm up: the dummy hash exists and the code paths have run once.
	if st, err := login("warmup@example.com"); err != nil || st != http.StatusUnauthorized {
		b.Fatalf("warm-up login: %d %v", st, err)
	}
	idle, err := procStatusKB(pid, "VmRSS")
	if err != nil {
		b.Fatal(err)
	}
	var peakKB, checked, turnedAway int
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Reset the peak (VmHWM) to the current RSS.
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
			b.Fatalf("reset peak RSS: %v", err)
		}
		start := make(chan struct{})
		statuses := make(chan int, n)
		var wg sync.WaitGroup
		for j := 0; j < n; j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				st, err := login(fmt.Sprintf("storm-%d-%d@example.com", i, j))
				if err != nil {
					b.Error(err)
				}
				statuses <- st
			}()
		}
		close(start)
		wg.Wait()
		close(statuses)
		for st := range statuses {
			switch st {
			case http.StatusUnauthorized:
				checked++
			case http.StatusTooManyRequests:
				turnedAway++
			default:
				b.Errorf("login answered %d", st)
			}
		}
		hwm, err := procStatusKB(pid, "VmHWM")
		if err != nil {
			b.Fatal(err)
		}
		peakKB = max(peakKB, hwm)
	}
	b.StopTimer()
	b.ReportMetric(float64(peakKB)/1024, "peak-RSS-MB")
	b.ReportMetric(float64(idle)/1024, "idle-RSS-MB")
	b.ReportMetric(float64(checked)/float64(b.N), "checked/storm")
	b.ReportMetric(float64(turnedAway)/float64(b.N), "turned-away/storm")
	b.ReportMetric(float64(n), "parallel")
}

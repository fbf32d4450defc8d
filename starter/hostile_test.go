package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/exchange"
	"github.com/hybridflow/hybridflow/internal/exchange/online"
	"github.com/hybridflow/hybridflow/internal/graph"
	"github.com/hybridflow/hybridflow/internal/hostile"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/workflows"
)

// The hostile-input table: each input below is fed to the real command or
// client in a process of its own (this test binary, re-run with
// HYBRIDFLOW_HOSTILE_CASE), so that its time and peak memory are its own.
// The test asserts that every input is refused (or, for terminal output,
// neutralised) with the right field or message, within time and memory
// bounds far below what the same inputs cost before the guards. With
// HYBRIDFLOW_WRITE_HOSTILE_TABLE=1 it writes the table into
// docs/hostile-input.md between the markers of HYBRIDFLOW_HOSTILE_SECTION
// (default hostile-input-table).

const (
	envHostileCase  = "HYBRIDFLOW_HOSTILE_CASE"
	envHostileDir   = "HYBRIDFLOW_HOSTILE_DIR"
	envWriteTable   = "HYBRIDFLOW_WRITE_HOSTILE_TABLE"
	envTableSection = "HYBRIDFLOW_HOSTILE_SECTION"
	// hostileKill ends a case that is still running: the inputs that
	// made the old code page for ever.
	hostileKill = 120 * time.Second
)

// hostileCase is one row of the table.
type hostileCase struct {
	name  string // the case's key, for HYBRIDFLOW_HOSTILE_CASE
	input string // the table's description of the input
	// write prepares the input in dir (in the parent, so the child's
	// memory is the product's); nil when the case builds nothing.
	write func(t *testing.T, dir string)
	// run feeds the input to the product, in the child; it returns what
	// happened in a sentence and whether the input was refused or
	// neutralised as it must be.
	run func(dir string) (result string, ok bool)
	// want is a regular expression the result must match.
	want string
	// bounds the case must stay within.
	maxTime time.Duration
	maxRSS  int64 // bytes
}

func hostileCases() []hostileCase {
	const mib = 1 << 20
	validate := func(file string) func(dir string) (string, bool) {
		return func(dir string) (string, bool) {
			var out, errb bytes.Buffer
			code := run(context.Background(), []string{"validate", "-f", filepath.Join(dir, file)}, &out, &errb, func(string) string { return "" })
			first := strings.SplitN(strings.TrimSpace(out.String()+errb.String()), "\n", 2)[0]
			first = strings.ReplaceAll(first, dir+string(filepath.Separator), "")
			if code == 0 {
				return "accepted: " + first, false
			}
			return fmt.Sprintf("refused (exit %d): %s", code, first), true
		}
	}
	writeFile := func(name string, gen func() []byte) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, name), gen(), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	return []hostileCase{
		{
			name: "baseline", input: "nothing (the test process itself, for scale)",
			run:  func(string) (string, bool) { return "n/a", true },
			want: `^n/a$`, maxTime: 5 * time.Second, maxRSS: 128 * mib,
		},
		{
			name:    "alias-bomb",
			input:   fmt.Sprintf("inventory of YAML aliases: 190 KB, one tenant with %d SMTP domains referred to %d times (`validate`)", hostile.AliasBombDomains, hostile.AliasBombRefs),
			write:   writeFile("bomb.yaml", func() []byte { return hostile.AliasBomb(hostile.AliasBombDomains, hostile.AliasBombRefs) }),
			run:     validate("bomb.yaml"),
			want:    `^refused \(exit 1\): bomb\.yaml:3: tenants\[1\]: YAML aliases are not allowed`,
			maxTime: 5 * time.Second, maxRSS: 128 * mib,
		},
		{
			name:    "display-name-60mb",
			input:   "60 MB display name (`validate`)",
			write:   writeFile("name60.yaml", func() []byte { return hostile.HugeDisplayName(60 << 20) }),
			run:     validate("name60.yaml"),
			want:    `^refused \(exit 1\): name60\.yaml: the file is larger than 16 MiB`,
			maxTime: 5 * time.Second, maxRSS: 128 * mib,
		},
		{
			name:    "display-name-1mib",
			input:   "1 MiB display name in a file under the cap (`validate`)",
			write:   writeFile("name1.yaml", func() []byte { return hostile.HugeDisplayName(1 << 20) }),
			run:     validate("name1.yaml"),
			want:    `^refused \(exit 1\): name1\.yaml:3: tenants\[0\]\.display_name: a value of 1048576 bytes, longer than`,
			maxTime: 5 * time.Second, maxRSS: 128 * mib,
		},
		{
			name:    "oversized-inventory",
			input:   "valid inventory of 20,000 fully populated tenants, 22 MB (`validate`)",
			write:   writeFile("big.yaml", func() []byte { return hostile.FullInventory(20000) }),
			run:     validate("big.yaml"),
			want:    `^refused \(exit 1\): big\.yaml: the file is larger than 16 MiB, the most an inventory may be; split`,
			maxTime: 5 * time.Second, maxRSS: 128 * mib,
		},
		{
			name:  "syntax-error-at-end",
			input: "inventory just under the cap (16 MiB, 14,700 tenants) with a syntax error on its last line (`validate`)",
			write: writeFile("late.yaml", func() []byte {
				data := hostile.FullInventory(14800)
				data = data[:bytes.LastIndexByte(data[:16<<20-64], '\n')+1]
				return append(data, "  - id: [unclosed\n"...)
			}),
			run:     validate("late.yaml"),
			want:    `^refused \(exit 1\): late\.yaml:\d+: malformed YAML`,
			maxTime: 60 * time.Second, maxRSS: 1024 * mib,
		},
		{
			name:  "display-name-ansi",
			input: "display name `Contoso ESC[2J ESC[H all tenants verified CR` (`validate`)",
			write: writeFile("ansi.yaml", func() []byte {
				return []byte("tenants:\n" + hostile.Tenant(`"`+strings.NewReplacer("\x1b", `\e`, "\r", `\r`).Replace(hostile.ANSIDisplayName)+`"`))
			}),
			run:     validate("ansi.yaml"),
			want:    `^refused \(exit 1\): ansi\.yaml:3: tenants\[0\]\.display_name: .*contains a control character \(U\+001B\)`,
			maxTime: 5 * time.Second, maxRSS: 128 * mib,
		},
		{
			name:  "worker-config-huge-string",
			input: "worker config with a 512 KiB log_level (`LoadWorkerConfig`, as the worker and every CLI command)",
			write: writeFile("worker.yaml", func() []byte { return []byte("log_level: " + strings.Repeat("d", 512<<10) + "\n") }),
			run: func(dir string) (string, bool) {
				path := filepath.Join(dir, "worker.yaml")
				_, err := config.LoadWorkerConfig(path, func(string) string { return "" })
				if err == nil {
					return "accepted", false
				}
				msg := strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), "")
				return "refused: " + clipResult(msg), true
			},
			want:    `^refused: worker\.yaml:1: log_level: a value of 524288 bytes, longer than`,
			maxTime: 5 * time.Second, maxRSS: 128 * mib,
		},
		{
			name:    "graph-endless-paging",
			input:   "Graph list whose every page has an @odata.nextLink (`Domains`, default cap)",
			run:     endlessGraphPaging,
			want:    `^refused after 1000 requests: graph Domains: page-limit: gave up after 1000 pages`,
			maxTime: 30 * time.Second, maxRSS: 192 * mib,
		},
		{
			name:    "exo-endless-paging",
			input:   "Exchange Online cmdlet whose every page has an @odata.nextLink (`Get-AcceptedDomain`, default cap)",
			run:     endlessEXOPaging,
			want:    `^refused after 1000 requests: .*more than 1000 pages`,
			maxTime: 30 * time.Second, maxRSS: 192 * mib,
		},
		{
			name:  "remote-error-ansi",
			input: "remote error text with ESC]0;title BEL ESC[2J CR in a paused step (`status` printer)",
			run: func(string) (string, bool) {
				var out bytes.Buffer
				a := &app{stdout: &out, stderr: &out, getenv: func(string) string { return "" }}
				a.printSteps(workflows.SetupState{TenantID: hostile.TenantID, State: "paused",
					Steps: []*workflows.StepState{{Step: "auth-servers", Status: "failed", LastError: "proxy: \x1b]0;owned\x07\x1b[2J\rall verified"}}})
				if strings.ContainsAny(out.String(), "\x1b\x07\r") {
					return "printed raw: the terminal obeys the escapes", false
				}
				i := strings.Index(out.String(), "proxy:")
				return "printed escaped: " + strings.TrimSpace(out.String()[i:]), true
			},
			want:    `^printed escaped: proxy: \\u001b\]0;owned\\u0007\\u001b\[2J\\u000dall verified$`,
			maxTime: 5 * time.Second, maxRSS: 128 * mib,
		},
		{
			name:  "passphrase-codec-key",
			input: "codec key that is base64 of a 32-character passphrase (`codec-server`)",
			run: func(string) (string, bool) {
				env := map[string]string{config.EnvCodecKeys: "k1=env:HF_KEY", "HF_KEY": hostile.PassphraseKey}
				return runBriefly([]string{"codec-server", "--listen", "127.0.0.1:0"}, env)
			},
			want:    "^refused \\(exit 1\\): error: codec key k1 \\(env:HF_KEY\\): not a random key: its 32 bytes are all printable text.*openssl rand -base64 32",
			maxTime: 10 * time.Second, maxRSS: 128 * mib,
		},
		{
			name:  "codec-server-open",
			input: "codec server on 0.0.0.0 without authentication (`codec-server --listen 0.0.0.0:0 --allow-remote`)",
			run: func(string) (string, bool) {
				return runBriefly([]string{"codec-server", "--listen", "0.0.0.0:0", "--allow-remote"}, randomCodecEnv())
			},
			want:    `^refused \(exit 1\): error: --listen 0\.0\.0\.0:0 is not a loopback address.*--auth-token.*--tls-client-ca`,
			maxTime: 10 * time.Second, maxRSS: 128 * mib,
		},
	}
}

// clipResult keeps a result to one short line, with long runs of one
// byte (an echoed hostile value) shortened.
func clipResult(s string) string {
	s = strings.SplitN(s, "\n", 2)[0]
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i + 1
		for j < len(s) && s[j] == s[i] {
			j++
		}
		if j-i > 16 && s[i] < 0x80 {
			fmt.Fprintf(&b, "%s…(%d×)", s[i:i+8], j-i)
		} else {
			b.WriteString(s[i:j])
		}
		i = j
	}
	s = b.String()
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// runBriefly runs a command that must refuse to start; one that starts
// anyway is stopped after three seconds and reported as started.
func runBriefly(args []string, env map[string]string) (string, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, args, &out, &errb, func(n string) string { return env[n] })
	if code == 0 {
		return "started: " + clipResult(out.String()), false
	}
	return fmt.Sprintf("refused (exit %d): %s", code, clipResult(strings.TrimSpace(errb.String()))), true
}

func randomCodecEnv() map[string]string {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return map[string]string{config.EnvCodecKeys: "k1=env:HF_KEY", "HF_KEY": base64.StdEncoding.EncodeToString(k)}
}

// endlessGraphPaging lists the domains of a Graph that always has another
// page, with the client's default options.
func endlessGraphPaging(string) (string, bool) {
	var srv *httptest.Server
	var n atomic.Int64
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests := n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"value":           []any{map[string]any{"id": fmt.Sprintf("d%d.contoso.com", requests), "isVerified": true}},
			"@odata.nextLink": srv.URL + "/v1.0/domains?$skiptoken=" + fmt.Sprint(requests),
		})
	}))
	defer srv.Close()
	c, err := graph.New(graph.Options{Cloud: cloud.MustLookup("global"), TenantID: "t1", Credential: sim.StaticCredential("t1"),
		BaseURL: srv.URL + "/v1.0", HTTPClient: srv.Client()})
	if err != nil {
		return "client: " + err.Error(), false
	}
	ctx, cancel := context.WithTimeout(context.Background(), pagingDeadline)
	defer cancel()
	_, err = c.Domains(ctx)
	return pagingResult(ctx, n.Load(), err)
}

// endlessEXOPaging runs a cmdlet against an Exchange Online that always
// has another page, with the client's default options.
func endlessEXOPaging(string) (string, bool) {
	var srv *httptest.Server
	var n atomic.Int64
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests := n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"value":           []any{map[string]any{"DomainName": fmt.Sprintf("d%d.contoso.com", requests)}},
			"@odata.nextLink": srv.URL + "/adminapi/beta/t1/InvokeCommand?$skiptoken=" + fmt.Sprint(requests),
		})
	}))
	defer srv.Close()
	c := online.New(online.Options{Cloud: cloud.MustLookup("global"), TenantID: "t1", Credential: sim.StaticCredential("t1"),
		BaseURL: srv.URL, HTTPClient: srv.Client()})
	ctx, cancel := context.WithTimeout(context.Background(), pagingDeadline)
	defer cancel()
	_, err := c.Run(ctx, exchange.Command{Cmdlet: "Get-AcceptedDomain"})
	return pagingResult(ctx, n.Load(), err)
}

// pagingDeadline stops a client that pages for ever, a little before the
// child would be killed, so that it can still report.
const pagingDeadline = hostileKill - 10*time.Second

func pagingResult(ctx context.Context, requests int64, err error) (string, bool) {
	switch {
	case ctx.Err() != nil:
		return fmt.Sprintf("still paging after %d requests when the test's %s deadline stopped it", requests, pagingDeadline), false
	case err == nil:
		return fmt.Sprintf("accepted after %d requests", requests), false
	}
	return fmt.Sprintf("refused after %d requests: %s", requests, clipResult(err.Error())), true
}

// hostileOutcome is what the child reports and the parent measures.
type hostileOutcome struct {
	Result     string        `json:"result"`
	OK         bool          `json:"ok"`
	Elapsed    time.Duration `json:"elapsed"`
	TotalAlloc uint64        `json:"total_alloc"`
	PeakRSS    int64         `json:"peak_rss"`
	MaxRSS     int64         `json:"-"`
	Killed     bool          `json:"-"`
}

const hostileMarker = "HOSTILE-OUTCOME "

func TestHostileInputs(t *testing.T) {
	cases := hostileCases()
	if name := os.Getenv(envHostileCase); name != "" {
		// The child: run one case and report.
		for _, c := range cases {
			if c.name != name {
				continue
			}
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			began := time.Now()
			res, ok := c.run(os.Getenv(envHostileDir))
			o := hostileOutcome{Result: res, OK: ok, Elapsed: time.Since(began)}
			runtime.ReadMemStats(&after)
			o.TotalAlloc = after.TotalAlloc - before.TotalAlloc
			o.PeakRSS = peakRSS(os.Getpid())
			b, _ := json.Marshal(o)
			fmt.Printf("\n%s%s\n", hostileMarker, b)
			return
		}
		t.Fatalf("no hostile case %q", name)
	}

	dir := t.TempDir()
	outcomes := make([]hostileOutcome, len(cases))
	for i, c := range cases {
		if c.write != nil {
			c.write(t, dir)
		}
		outcomes[i] = runHostileChild(t, c.name, dir)
		o := outcomes[i]
		t.Logf("%-26s %8s %7.1f MiB peak %7.1f MiB allocated  %s", c.name, o.Elapsed.Round(time.Millisecond), float64(o.MaxRSS)/(1<<20), float64(o.TotalAlloc)/(1<<20), o.Result)
	}
	if os.Getenv(envWriteTable) == "1" {
		section := os.Getenv(envTableSection)
		if section == "" {
			section = "hostile-input-table"
		}
		if err := writeHostileTable(filepath.Join("..", "docs", "hostile-input.md"), section, cases, outcomes); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range cases {
		o := outcomes[i]
		t.Run(c.name, func(t *testing.T) {
			switch {
			case o.Killed:
				t.Errorf("still running after %s (killed)", hostileKill)
			case !o.OK:
				t.Errorf("not refused: %s", o.Result)
			case !regexp.MustCompile(c.want).MatchString(o.Result):
				t.Errorf("result %q does not match %q", o.Result, c.want)
			}
			if o.Elapsed > c.maxTime {
				t.Errorf("took %s, more than %s", o.Elapsed, c.maxTime)
			}
			if o.MaxRSS > c.maxRSS {
				t.Errorf("peak memory %.1f MiB, more than %.0f MiB", float64(o.MaxRSS)/(1<<20), float64(c.maxRSS)/(1<<20))
			}
		})
	}
}

// runHostileChild runs one case in a child process and measures its peak
// resident memory; a child still running after hostileKill is killed.
func runHostileChild(t *testing.T, name, dir string) hostileOutcome {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHostileInputs$", "-test.count=1")
	cmd.Env = append(os.Environ(), envHostileCase+"="+name, envHostileDir+"="+dir, envWriteTable+"=")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	timer := time.AfterFunc(hostileKill, func() { _ = cmd.Process.Kill() })
	// The child's peak is sampled while it runs, for a child that has to
	// be killed and cannot report it itself. (Its rusage maxrss is no
	// use: Linux carries the parent's peak over into it at fork.)
	var sampled atomic.Int64
	stop := make(chan struct{})
	sampling := make(chan struct{})
	go func() {
		defer close(sampling)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			sampled.Store(max(sampled.Load(), peakRSS(cmd.Process.Pid)))
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	err := cmd.Wait()
	close(stop)
	<-sampling
	killed := !timer.Stop()
	var o hostileOutcome
	sc := bufio.NewScanner(&out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	found := false
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), hostileMarker); ok {
			found = json.Unmarshal([]byte(line), &o) == nil
		}
	}
	o.MaxRSS = max(o.PeakRSS, sampled.Load())
	switch {
	case killed:
		o.Killed, o.Elapsed, o.Result = true, time.Since(began), fmt.Sprintf("still running after %s; killed", hostileKill)
	case !found:
		t.Fatalf("case %s: no outcome (%v):\n%s", name, err, clipResult(out.String()))
	}
	return o
}

// writeHostileTable replaces the lines between the section's markers in
// the document with the table.
func writeHostileTable(path, section string, cases []hostileCase, outcomes []hostileOutcome) error {
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	begin, end := "<!-- "+section+":begin -->", "<!-- "+section+":end -->"
	i, j := bytes.Index(doc, []byte(begin)), bytes.Index(doc, []byte(end))
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %s … %s markers", path, begin, end)
	}
	var b strings.Builder
	b.WriteString(begin + "\n")
	fmt.Fprintf(&b, "Measured %s on %s/%s, %d CPUs (`%s=1 go test ./starter -run TestHostileInputs`).\n\n",
		time.Now().UTC().Format("2006-01-02"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), envWriteTable)
	b.WriteString("| Input | Result | Time | Peak memory (RSS) | Allocated |\n|---|---|---:|---:|---:|\n")
	for k, c := range cases {
		o := outcomes[k]
		res := strings.ReplaceAll(o.Result, "|", `\|`)
		alloc := fmt.Sprintf("%.1f MiB", float64(o.TotalAlloc)/(1<<20))
		if o.Killed {
			alloc = "—"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.0f MiB | %s |\n", c.input, "`"+strings.ReplaceAll(res, "`", "'")+"`",
			roundDuration(o.Elapsed), float64(o.MaxRSS)/(1<<20), alloc)
	}
	b.WriteString(end)
	out := append(append(append([]byte{}, doc[:i]...), b.String()...), doc[j+len(end):]...)
	return os.WriteFile(path, out, 0o644)
}

func roundDuration(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Millisecond).String()
}

// peakRSS is a process's peak resident set (VmHWM) in bytes, 0 when it
// cannot be read (the process has ended, or this is not Linux).
func peakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

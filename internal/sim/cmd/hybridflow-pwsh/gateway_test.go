package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeGateway is a loopback stand-in for the simulator's PowerShell
// gateway: it accepts the HTTP upgrade as the contract describes, records
// what arrived, answers the ready line and echoes each request back as one
// row.
type fakeGateway struct {
	t  *testing.T
	ln net.Listener

	// refuse, when set, is the status line and body answered instead of
	// 101 (e.g. "404 Not Found", "no site \"x\"").
	refuseStatus, refuseBody string
	// notReady answers a ready:false line after the upgrade.
	notReady bool
	// dropAfter closes the connection when this many requests arrived
	// (0: never).
	dropAfter int
	// slow names a cmdlet answered only after slowFor.
	slow    string
	slowFor time.Duration

	mu       sync.Mutex
	sessions []*gatewaySession
}

// gatewaySession is what one connection brought.
type gatewaySession struct {
	Method, Path, Upgrade, Connection, PID string
	Config                                 string   // the config line, verbatim
	Requests                               []string // request lines, verbatim
	Removed                                bool     // a {"remove":true} line came
	Ended                                  bool     // the gateway is done with the connection
}

func newFakeGateway(t *testing.T) *fakeGateway {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &fakeGateway{t: t, ln: ln}
	t.Cleanup(func() { ln.Close() })
	go g.serve()
	return g
}

// URL is the gateway endpoint for path, e.g. "/PowerShell/site-1".
func (g *fakeGateway) URL(path string) string { return "http://" + g.ln.Addr().String() + path }

func (g *fakeGateway) Sessions() []gatewaySession {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]gatewaySession, len(g.sessions))
	for i, s := range g.sessions {
		out[i] = *s
		out[i].Requests = append([]string(nil), s.Requests...)
	}
	return out
}

// Ended waits (a few seconds at most) until the gateway is done with
// every connection and returns the sessions.
func (g *fakeGateway) Ended() []gatewaySession {
	g.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := g.Sessions()
		done := true
		for _, x := range s {
			done = done && x.Ended
		}
		if done || time.Now().After(deadline) {
			return s
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (g *fakeGateway) serve() {
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		go g.handle(c)
	}
}

func (g *fakeGateway) handle(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	s := &gatewaySession{Method: req.Method, Path: req.URL.EscapedPath(), Upgrade: req.Header.Get("Upgrade"),
		Connection: req.Header.Get("Connection"), PID: req.Header.Get("X-Hybridflow-Pid")}
	g.mu.Lock()
	g.sessions = append(g.sessions, s)
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		s.Ended = true
		g.mu.Unlock()
	}()
	if g.refuseStatus != "" {
		fmt.Fprintf(c, "HTTP/1.1 %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n\r\n%s", g.refuseStatus, len(g.refuseBody), g.refuseBody)
		return
	}
	if req.Method != http.MethodPost || !strings.EqualFold(s.Upgrade, "hybridflow-pshost/1") {
		body := "want POST with Upgrade: hybridflow-pshost/1\n"
		fmt.Fprintf(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		return
	}
	fmt.Fprint(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: hybridflow-pshost/1\r\n\r\n")
	line, err := br.ReadString('\n')
	if err != nil {
		return
	}
	g.mu.Lock()
	s.Config = strings.TrimSuffix(line, "\n")
	g.mu.Unlock()
	if g.notReady {
		fmt.Fprintln(c, `{"ready":false,"version":1,"error":{"type":"System.Management.Automation.Remoting.PSRemotingTransportException","message":"Connecting to remote server failed: no on-premises organisation for tenant t1.","category":"OpenError"}}`)
		return
	}
	ready, _ := json.Marshal(map[string]any{"ready": true, "version": 1, "session": "fake-" + s.PID + "-" + s.Path})
	fmt.Fprintf(c, "%s\n", ready)
	for n := 1; ; n++ {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\n")
		if line == `{"remove":true}` {
			g.mu.Lock()
			s.Removed = true
			g.mu.Unlock()
			return
		}
		g.mu.Lock()
		s.Requests = append(s.Requests, line)
		g.mu.Unlock()
		if g.dropAfter > 0 && n >= g.dropAfter {
			return
		}
		type command struct {
			Cmdlet     string         `json:"cmdlet"`
			Parameters map[string]any `json:"parameters"`
		}
		var r struct {
			ID uint64 `json:"id"`
			command
			Batch []command `json:"batch"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			g.t.Errorf("gateway: request line %q: %v", line, err)
			return
		}
		if g.slow != "" && r.Cmdlet == g.slow {
			time.Sleep(g.slowFor)
		}
		row := func(c command) []any {
			return []any{map[string]any{"cmdlet": c.Cmdlet, "parameters": c.Parameters, "path": s.Path, "pid": s.PID}}
		}
		var reply []byte
		if r.Batch != nil {
			results := []any{}
			for _, c := range r.Batch {
				results = append(results, map[string]any{"rows": row(c), "error": nil})
			}
			reply, _ = json.Marshal(map[string]any{"id": r.ID, "results": results})
		} else {
			reply, _ = json.Marshal(map[string]any{"id": r.ID, "rows": row(r.command), "error": nil})
		}
		fmt.Fprintf(c, "%s\n", reply)
	}
}

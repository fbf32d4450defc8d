package simserver

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hybridflow/hybridflow/internal/sim"
)

// ErrNotRunning says no simulator is running for a state directory.
var ErrNotRunning = errors.New("no simulator running")

// ReadState reads stateDir/state.json. A missing file, or one naming a
// process that is gone, is ErrNotRunning with a hint how to start one.
func ReadState(stateDir string) (State, error) {
	path := filepath.Join(stateDir, StateFileName)
	st, err := readStateFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return State{}, fmt.Errorf("%w: %s not found; start one with hybridflow-sim serve --world FILE --state-dir %s", ErrNotRunning, path, stateDir)
	case err != nil:
		return State{}, err
	case !processAlive(st.PID):
		return State{}, fmt.Errorf("%w: %s names process %d, which has exited (a simulator that was killed leaves its state file); start one with hybridflow-sim serve --world FILE --state-dir %s", ErrNotRunning, path, st.PID, stateDir)
	}
	return st, nil
}

// Client calls a running simulator's admin API.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// Dial makes a Client from stateDir/state.json: base URL, CA and admin token.
func Dial(stateDir string) (*Client, error) {
	st, err := ReadState(stateDir)
	if err != nil {
		return nil, err
	}
	return NewClient(st)
}

// NewClient makes a Client from a State.
func NewClient(st State) (*Client, error) {
	pem, err := os.ReadFile(st.CAFile)
	if err != nil {
		return nil, fmt.Errorf("simulator CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("simulator CA: %s holds no PEM certificate", st.CAFile)
	}
	tok, err := os.ReadFile(st.AdminTokenFile)
	if err != nil {
		return nil, fmt.Errorf("simulator admin token: %w", err)
	}
	return &Client{
		base:  strings.TrimSuffix(st.BaseURL, "/"),
		token: strings.TrimSpace(string(tok)),
		http: &http.Client{
			Timeout:   2 * time.Minute,
			Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
		},
	}, nil
}

// do sends one admin request and returns the body of a 2xx answer; other
// answers become errors carrying the simulator's reason.
func (c *Client) do(ctx context.Context, method, path, contentType string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("simulator %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("simulator %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, &AdminError{Status: resp.StatusCode, Message: strings.TrimSpace(string(out))}
	}
	return out, nil
}

// AdminError is a refusal by the admin API.
type AdminError struct {
	Status  int
	Message string
}

func (e *AdminError) Error() string {
	return fmt.Sprintf("simulator refused (%d %s): %s", e.Status, http.StatusText(e.Status), e.Message)
}

// Dump returns the world as YAML.
func (c *Client) Dump(ctx context.Context) ([]byte, error) {
	return c.do(ctx, http.MethodGet, "/_sim/world", "", nil)
}

// Load replaces the world's contents with a YAML world.
func (c *Client) Load(ctx context.Context, world []byte) error {
	_, err := c.do(ctx, http.MethodPut, "/_sim/world", "application/yaml", world)
	return err
}

// Reset reloads the world the simulator started with.
func (c *Client) Reset(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodPost, "/_sim/reset", "", nil)
	return err
}

// Requests returns the request log after record since.
func (c *Client) Requests(ctx context.Context, since uint64) (RequestsPage, error) {
	var p RequestsPage
	b, err := c.do(ctx, http.MethodGet, "/_sim/requests?since="+strconv.FormatUint(since, 10), "", nil)
	if err == nil {
		err = json.Unmarshal(b, &p)
	}
	return p, err
}

// Sessions returns the PowerShell gateway's session counts by side and
// site.
func (c *Client) Sessions(ctx context.Context) (map[string]sim.SessionCounts, error) {
	var m map[string]sim.SessionCounts
	b, err := c.do(ctx, http.MethodGet, "/_sim/sessions", "", nil)
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	return m, err
}

// Clock returns the simulator's clock.
func (c *Client) Clock(ctx context.Context) (Clock, error) {
	b, err := c.do(ctx, http.MethodGet, "/_sim/clock", "", nil)
	return decodeClock(b, err)
}

// SetClock pins the clock to t (within ClockTolerance of the wall clock).
func (c *Client) SetClock(ctx context.Context, t time.Time) (Clock, error) {
	body, _ := json.Marshal(ClockChange{Now: &t})
	b, err := c.do(ctx, http.MethodPut, "/_sim/clock", "application/json", body)
	return decodeClock(b, err)
}

// WallClock releases the clock to the wall clock.
func (c *Client) WallClock(ctx context.Context) (Clock, error) {
	body, _ := json.Marshal(ClockChange{Wall: true})
	b, err := c.do(ctx, http.MethodPut, "/_sim/clock", "application/json", body)
	return decodeClock(b, err)
}

func decodeClock(b []byte, err error) (Clock, error) {
	var c Clock
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	return c, err
}

// Faults returns the fault rules as YAML.
func (c *Client) Faults(ctx context.Context) ([]byte, error) {
	return c.do(ctx, http.MethodGet, "/_sim/faults", "", nil)
}

// AddFaults adds YAML fault rules and returns all rules as YAML.
func (c *Client) AddFaults(ctx context.Context, rules []byte) ([]byte, error) {
	return c.do(ctx, http.MethodPost, "/_sim/faults", "application/yaml", rules)
}

// ClearFaults removes every fault rule.
func (c *Client) ClearFaults(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodDelete, "/_sim/faults", "", nil)
	return err
}

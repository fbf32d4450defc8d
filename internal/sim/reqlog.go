package sim

// The request log: what the simulator was asked, in the order the answers
// went out, for the stand-alone simulator's admin API and for tests that
// judge a run by the calls it made. It is a bounded ring: a long run keeps
// its most recent requests and says how many it forgot.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hybridflow/hybridflow/internal/exchange"
	"github.com/hybridflow/hybridflow/internal/exchange/shell"
)

// ProtoToken labels token-endpoint requests (OpenID discovery included) in
// the request log; fault rules do not target it.
const ProtoToken = "token"

// DefaultRequestLogSize is how many requests a log keeps when asked for 0.
const DefaultRequestLogSize = 20000

// RequestRecord is one answered request.
type RequestRecord struct {
	// Seq numbers records from 1 in the order they were completed.
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"` // when the request arrived
	// Duration is how long the answer took (fault latency included).
	Duration time.Duration `json:"duration_ns"`
	Protocol string        `json:"protocol"` // graph, exo, token or shell
	// Method is the HTTP method; for the PowerShell host, "invoke" for one
	// command and "batch" for several in one round trip.
	Method string `json:"method"`
	// Path is the HTTP path (query left out); empty for the PowerShell host.
	Path string `json:"path,omitempty"`
	// Cmdlet is the cmdlet an Exchange Online or host request ran; a batch
	// lists its cmdlets separated by commas.
	Cmdlet string `json:"cmdlet,omitempty"`
	// Tenant is the tenant the request was for, where the request says
	// (token, path or host session); empty otherwise.
	Tenant string `json:"tenant,omitempty"`
	// Site is the host session's site (gateway sessions only).
	Site string `json:"site,omitempty"`
	// Status is the HTTP status (0 when the connection was dropped, and
	// for host requests).
	Status int `json:"status,omitempty"`
	// OK: a 1xx–3xx answer, or a host reply without a cmdlet error.
	OK bool `json:"ok"`
	// Error is the first cmdlet error's type of a host reply.
	Error string `json:"error,omitempty"`
	// Fault lists the injected faults' kinds, comma-separated, in the
	// order they were decided.
	Fault string `json:"fault,omitempty"`
}

// RequestLog is a bounded, concurrency-safe ring of RequestRecords. The
// zero value is not usable; a nil *RequestLog records nothing.
type RequestLog struct {
	mu   sync.Mutex
	ring []RequestRecord
	head int    // index of the oldest record
	n    int    // records held
	last uint64 // Seq of the newest record
}

// NewRequestLog keeps the newest size records (DefaultRequestLogSize when
// size <= 0).
func NewRequestLog(size int) *RequestLog {
	if size <= 0 {
		size = DefaultRequestLogSize
	}
	return &RequestLog{ring: make([]RequestRecord, size)}
}

// Add numbers r and keeps it, forgetting the oldest record when full.
func (l *RequestLog) Add(r RequestRecord) RequestRecord {
	if l == nil {
		return r
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.last++
	r.Seq = l.last
	if l.n < len(l.ring) {
		l.ring[(l.head+l.n)%len(l.ring)] = r
		l.n++
	} else {
		l.ring[l.head] = r
		l.head = (l.head + 1) % len(l.ring)
	}
	return r
}

// Since returns the records numbered after seq, oldest first, and the
// number of the newest record (to pass as seq next time). Records after
// seq that the ring already forgot are missing: lost says how many.
func (l *RequestLog) Since(seq uint64) (recs []RequestRecord, last uint64, lost uint64) {
	if l == nil {
		return nil, 0, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	oldest := l.last - uint64(l.n) + 1 // Seq of ring[head] when n > 0
	if seq+1 < oldest {
		lost = oldest - (seq + 1)
	}
	for i := 0; i < l.n; i++ {
		r := l.ring[(l.head+i)%len(l.ring)]
		if r.Seq > seq {
			recs = append(recs, r)
		}
	}
	return recs, l.last, lost
}

// RequestNote collects what the protocol servers decided about one request
// (the faults injected), so the log can say it. Servers call NoteFault with
// the request's context; without a note in the context that does nothing.
type RequestNote struct {
	mu     sync.Mutex
	faults []string
}

type requestNoteKey struct{}

// WithRequestNote returns ctx carrying a fresh note.
func WithRequestNote(ctx context.Context) (context.Context, *RequestNote) {
	n := &RequestNote{}
	return context.WithValue(ctx, requestNoteKey{}, n), n
}

// NoteFault records an injected fault on the request's note, if any.
func NoteFault(ctx context.Context, f Fault) {
	if n, _ := ctx.Value(requestNoteKey{}).(*RequestNote); n != nil {
		n.add(f.Kind)
	}
}

func (n *RequestNote) add(kind string) {
	if n == nil || kind == "" {
		return
	}
	n.mu.Lock()
	n.faults = append(n.faults, kind)
	n.mu.Unlock()
}

// Faults is the comma-separated list of noted fault kinds.
func (n *RequestNote) Faults() string {
	if n == nil {
		return ""
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return strings.Join(n.faults, ",")
}

// logHTTP records every request next serves in log: protocol by path,
// tenant from the bearer token (Graph), the path (Exchange Online) or the
// authority segment (token endpoint), and the faults the handler noted.
func logHTTP(log *RequestLog, tokens *tokenService, next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx, note := WithRequestNote(r.Context())
		r = r.WithContext(ctx)
		rec := RequestRecord{Time: start.UTC(), Method: r.Method, Path: r.URL.Path}
		switch {
		case strings.HasPrefix(r.URL.Path, "/v1.0/"):
			rec.Protocol = ProtoGraph
			if tok, err := BearerToken(r); err == nil || errors.Is(err, ErrTokenExpired) {
				rec.Tenant = tok.TenantID
			}
		case strings.HasPrefix(r.URL.Path, "/adminapi/"):
			rec.Protocol = ProtoEXO
			rec.Tenant, _ = exoTenantFromPath(r.URL.Path)
			rec.Cmdlet = peekEXOCmdlet(r)
		default:
			rec.Protocol = ProtoToken
			if ref, _, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/"); ok && ref != "common" {
				if id, known := tokens.resolveTenant(ref); known {
					rec.Tenant = id
				} else {
					rec.Tenant = ref
				}
			}
		}
		lw := &loggedWriter{ResponseWriter: rw}
		defer func() {
			rec.Duration = time.Since(start)
			rec.Status = lw.status
			if lw.dropped {
				rec.Status = 0
			}
			rec.OK = rec.Status > 0 && rec.Status < 400
			rec.Fault = note.Faults()
			p := recover()
			if p != nil {
				rec.Status, rec.OK = 0, false
			}
			log.Add(rec)
			if p != nil {
				panic(p)
			}
		}()
		next.ServeHTTP(lw, r)
		if lw.status == 0 && !lw.dropped {
			lw.status = http.StatusOK
		}
	})
}

// peekEXOCmdlet reads the cmdlet name of an InvokeCommand body and puts
// the body back for the handler. Continuation requests (no body) and
// bodies too large for the handler anyway are left alone.
func peekEXOCmdlet(r *http.Request) string {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength > exoMaxBodyBytes {
		return ""
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, exoMaxBodyBytes+1))
	r.Body = peekedBody{io.MultiReader(bytes.NewReader(data), r.Body), r.Body}
	if err != nil {
		return ""
	}
	var req exoRequest
	if json.Unmarshal(data, &req) != nil {
		return ""
	}
	return req.CmdletInput.CmdletName
}

// peekedBody reads what was peeked, then the rest, and closes the original.
type peekedBody struct {
	io.Reader
	orig io.Closer
}

func (b peekedBody) Close() error { return b.orig.Close() }

// loggedWriter remembers the status and whether the handler took the
// connection over (a dropped connection).
type loggedWriter struct {
	http.ResponseWriter
	status  int
	dropped bool
}

func (w *loggedWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *loggedWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *loggedWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack passes through (the fault servers close hijacked connections to
// drop a request) and marks the request dropped.
func (w *loggedWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, http.ErrNotSupported
	}
	c, brw, err := hj.Hijack()
	if err == nil {
		w.dropped = true
	}
	return c, brw, err
}

// shellRecord describes one host round trip for the log.
func shellRecord(tenant, site string, line []byte, reply any, drop bool, note *RequestNote, start time.Time) RequestRecord {
	rec := RequestRecord{Time: start.UTC(), Duration: time.Since(start), Protocol: ProtoShell, Tenant: tenant, Site: site, Method: "invoke"}
	var req struct {
		Cmdlet string `json:"cmdlet"`
		Batch  []struct {
			Cmdlet string `json:"cmdlet"`
		} `json:"batch"`
	}
	if json.Unmarshal(line, &req) == nil {
		if req.Batch != nil {
			rec.Method = "batch"
			names := make([]string, len(req.Batch))
			for i, c := range req.Batch {
				names[i] = c.Cmdlet
			}
			rec.Cmdlet = strings.Join(names, ",")
		} else {
			rec.Cmdlet = req.Cmdlet
		}
	}
	rec.Fault = note.Faults()
	if drop {
		return rec
	}
	var first *exchange.Error
	switch rp := reply.(type) {
	case shellSingleReply:
		first = rp.Error
	case shellBatchReply:
		for _, res := range rp.Results {
			if res.Error != nil {
				first = res.Error
				break
			}
		}
	case shell.Reply:
		first = rp.Error
	}
	rec.OK = first == nil
	if first != nil {
		rec.Error = first.Type
	}
	return rec
}

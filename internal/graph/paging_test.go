package graph_test

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/graph"
	"github.com/hybridflow/hybridflow/internal/sim"
)

// endlessGraph is a Graph that answers every list, and every request of a
// JSON batch, with one item and an @odata.nextLink back to itself: a
// broken or hostile service that never stops paging. It counts the GETs
// that followed a nextLink.
func endlessGraph(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var follows atomic.Int64
	var srv *httptest.Server
	page := func(item map[string]any) map[string]any {
		return map[string]any{"value": []any{item}, "@odata.nextLink": srv.URL + "/v1.0/loop?$skiptoken=again"}
	}
	item := func(path string) map[string]any {
		switch {
		case strings.Contains(path, "domains"):
			return map[string]any{"id": "contoso.com", "isVerified": true}
		case strings.Contains(path, "appRoleAssignments"):
			return map[string]any{"id": "a1", "principalId": "11111111-1111-4111-8111-000000000001"}
		}
		return map[string]any{"id": "00000000-0000-4000-8000-000000000001", "appId": "00000002-0000-0ff1-ce00-000000000000", "displayName": "x"}
	}
	last := "" // the kind of list the loop pages through
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/$batch") {
			var req struct {
				Requests []struct {
					ID  string `json:"id"`
					URL string `json:"url"`
				} `json:"requests"`
			}
			var body io.Reader = r.Body
			if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
				zr, err := gzip.NewReader(r.Body)
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				body = zr
			}
			if err := json.NewDecoder(body).Decode(&req); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			var resps []any
			for _, q := range req.Requests {
				resps = append(resps, map[string]any{"id": q.ID, "status": 200,
					"headers": map[string]string{"Content-Type": "application/json"}, "body": page(item(q.URL))})
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"responses": resps})
			return
		}
		if strings.HasSuffix(r.URL.Path, "/loop") {
			follows.Add(1)
		} else {
			last = r.URL.Path
		}
		_ = json.NewEncoder(w).Encode(page(item(last)))
	}))
	t.Cleanup(srv.Close)
	return srv, &follows
}

func endlessClient(t *testing.T, srv *httptest.Server, maxPages int) *graph.Client {
	t.Helper()
	c, err := graph.New(graph.Options{
		Cloud:      cloud.MustLookup("global"),
		TenantID:   "t1",
		Credential: sim.StaticCredential("t1"),
		BaseURL:    srv.URL + "/v1.0",
		HTTPClient: srv.Client(),
		MaxPages:   maxPages,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPagingIsBounded: every Graph list the client follows gives up after
// MaxPages pages with an error naming the request, instead of following
// @odata.nextLink for ever; the default cap is 1,000 pages.
func TestPagingIsBounded(t *testing.T) {
	srv, follows := endlessGraph(t)
	c := endlessClient(t, srv, 5)
	lists := map[string]func(context.Context) error{
		"Domains": func(ctx context.Context) error { _, err := c.Domains(ctx); return err },
		"AppRoleAssignments": func(ctx context.Context) error {
			_, err := c.AppRoleAssignments(ctx, "00000000-0000-4000-8000-000000000001")
			return err
		},
		"LookupServicePrincipal": func(ctx context.Context) error {
			_, err := c.LookupServicePrincipal(ctx, "00000002-0000-0ff1-ce00-000000000000")
			return err
		},
		"ApplicationByDisplayName": func(ctx context.Context) error {
			_, err := c.ApplicationByDisplayName(ctx, "x")
			return err
		},
		// The discovery batch's first list (the first-party service
		// principal) pages for ever.
		"ServicePrincipalByAppID": func(ctx context.Context) error {
			_, err := c.ReadEntraState(ctx, "00000002-0000-0ff1-ce00-000000000000", "")
			return err
		},
	}
	for op, call := range lists {
		t.Run(op, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			follows.Store(0)
			err := call(ctx)
			var ge *graph.Error
			if !errors.As(err, &ge) || ge.Op != op || !strings.Contains(ge.Message, "5 pages") {
				t.Fatalf("want a %s error about 5 pages, got %v after following %d nextLinks", op, err, follows.Load())
			}
			if graph.IsRetryable(err) {
				t.Errorf("endless paging is retryable: %v", err)
			}
			if k := graph.KindOf(err); k != graph.PageLimit {
				t.Errorf("kind %v, want %v", k, graph.PageLimit)
			}
			if n := follows.Load(); n != 4 {
				t.Errorf("followed %d nextLinks, want 4 (5 pages)", n)
			}
		})
	}
	t.Run("default", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		follows.Store(0)
		_, err := endlessClient(t, srv, 0).Domains(ctx)
		if err == nil || !strings.Contains(err.Error(), "1000 pages") || follows.Load() != graph.DefaultMaxPages-1 {
			t.Fatalf("default cap: %v after following %d nextLinks", err, follows.Load())
		}
	})
}

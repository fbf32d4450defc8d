package sim_test

import (
	"bytes"
	"path/filepath"
	"slices"
	"testing"

	"github.com/hybridflow/hybridflow/internal/sim"
)

func TestRequestLogKeepsTheNewestAndCountsWhatItForgot(t *testing.T) {
	l := sim.NewRequestLog(3)
	for _, c := range []string{"a", "b", "c", "d", "e"} {
		l.Add(sim.RequestRecord{Cmdlet: c})
	}
	seqs := func(rs []sim.RequestRecord) (out []uint64) {
		for _, r := range rs {
			out = append(out, r.Seq)
		}
		return out
	}
	recs, last, lost := l.Since(0)
	if !slices.Equal(seqs(recs), []uint64{3, 4, 5}) || recs[0].Cmdlet != "c" || last != 5 || lost != 2 {
		t.Fatalf("since 0: %v last %d lost %d", seqs(recs), last, lost)
	}
	recs, last, lost = l.Since(3)
	if !slices.Equal(seqs(recs), []uint64{4, 5}) || last != 5 || lost != 0 {
		t.Fatalf("since 3: %v last %d lost %d", seqs(recs), last, lost)
	}
	if recs, last, lost = l.Since(5); len(recs) != 0 || last != 5 || lost != 0 {
		t.Fatalf("since 5: %v last %d lost %d", recs, last, lost)
	}
	var none *sim.RequestLog
	none.Add(sim.RequestRecord{}) // a nil log records nothing and does not panic
}

func TestReplaceKeepsTheWorldObject(t *testing.T) {
	w, err := sim.Load(filepath.Join("..", "..", "configs", "sim", "small.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const t2 = "22222222-2222-4222-8222-000000000002"
	other := w.Clone()
	other.Update(t2, func(tn *sim.Tenant) { tn.DisplayName = "Replaced" })
	other.SetFaults([]sim.FaultRule{{Protocol: sim.ProtoGraph, Kind: sim.FaultThrottle, Rate: 1}})
	want, _ := other.Dump()
	w.Replace(other)
	got, _ := w.Dump()
	if !bytes.Equal(got, want) {
		t.Fatal("Replace did not copy the contents")
	}
	// The index follows: a lookup by ID finds the new tenant.
	name := ""
	w.View(t2, func(tn *sim.Tenant) { name = tn.DisplayName })
	if name != "Replaced" {
		t.Fatalf("lookup after Replace: %q", name)
	}
	if f := w.Decide(sim.ProtoGraph, "GET domains", t2); f.Kind != sim.FaultThrottle {
		t.Fatalf("fault rules after Replace: %+v", f)
	}
}

func TestTenantsAtSite(t *testing.T) {
	w, err := sim.Load(filepath.Join("..", "..", "configs", "sim", "small.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	w.Update("22222222-2222-4222-8222-000000000003", func(tn *sim.Tenant) { tn.Lync = &sim.LyncDeployment{Site: "Pool-A"} })
	for _, tc := range []struct {
		site string
		lync bool
		want []string
	}{
		{"site-1", false, []string{"22222222-2222-4222-8222-000000000001", "22222222-2222-4222-8222-000000000003"}},
		{"SITE-2", false, []string{"22222222-2222-4222-8222-000000000002"}},
		{"site-9", false, nil},
		{"pool-a", true, []string{"22222222-2222-4222-8222-000000000003"}},
		{"site-1", true, nil},
	} {
		if got := w.TenantsAtSite(tc.site, tc.lync); !slices.Equal(got, tc.want) {
			t.Errorf("TenantsAtSite(%q, %v) = %v, want %v", tc.site, tc.lync, got, tc.want)
		}
	}
}

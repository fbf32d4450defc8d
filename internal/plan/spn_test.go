package plan

import (
	"math/rand"
	"slices"
	"strings"
	"testing"
	"testing/quick"
)

func newRand(seed int64) *rand.Rand { return rand.New(rand.NewSource(seed)) }

func TestUnionSPNs(t *testing.T) {
	const fp = "00000002-0000-0ff1-ce00-000000000000"
	cases := []struct {
		name     string
		existing []string
		want     []string
		spns     []string
		added    []string
		mention  string
	}{
		{"trailing slash is the same host", []string{"https://mail.contoso.com"}, []string{"https://mail.contoso.com/"},
			[]string{"https://mail.contoso.com"}, nil, "1 wanted name is already registered"},
		{"case is ignored", []string{"https://MAIL.Contoso.com/"}, []string{"https://mail.contoso.com/"},
			[]string{"https://MAIL.Contoso.com/"}, nil, "nothing to write"},
		{"existing order kept, new ones sorted after", []string{fp, "https://z.contoso.com/", fp + "/outlook.office365.com"},
			[]string{"https://mail.contoso.com/", "https://autodiscover.contoso.com/"},
			[]string{fp, "https://z.contoso.com/", fp + "/outlook.office365.com", "https://autodiscover.contoso.com/", "https://mail.contoso.com/"},
			[]string{"https://autodiscover.contoso.com/", "https://mail.contoso.com/"}, "2 names to add"},
		{"21Vianet wildcard authority, case-insensitive", []string{fp + "/*.CONTOSO.com"}, []string{fp + "/*.contoso.com", fp + "/*.fabrikam.cn"},
			[]string{fp + "/*.CONTOSO.com", fp + "/*.fabrikam.cn"}, []string{fp + "/*.fabrikam.cn"}, "1 name to add"},
		{"duplicates within want collapse to one spelling", nil, []string{"https://mail.contoso.com/", "https://MAIL.contoso.com", "https://mail.contoso.com"},
			[]string{"https://MAIL.contoso.com"}, []string{"https://MAIL.contoso.com"}, "1 name to add"},
		{"blank wanted names are ignored", []string{"a"}, []string{"", "  "}, []string{"a"}, nil, "no names wanted"},
		{"http is not slash-insensitive", []string{"http://mail.contoso.com"}, []string{"http://mail.contoso.com/"},
			[]string{"http://mail.contoso.com", "http://mail.contoso.com/"}, []string{"http://mail.contoso.com/"}, "1 name to add"},
		{"never removes, even duplicates already there", []string{"https://a/", "https://A"}, []string{"https://b/"},
			[]string{"https://a/", "https://A", "https://b/"}, []string{"https://b/"}, "to add"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := UnionSPNs(c.existing, c.want)
			if !slices.Equal(d.SPNs, c.spns) || !slices.Equal(d.Added, c.added) || d.Changed != (len(c.added) > 0) || !strings.Contains(d.Reason, c.mention) {
				t.Fatalf("got %q added %q changed %v reason %q", d.SPNs, d.Added, d.Changed, d.Reason)
			}
			checkUnion(t, c.existing, c.want)
		})
	}
}

func TestUndoSPNs(t *testing.T) {
	current := []string{"x", "https://mail.contoso.com/", "y", "https://autodiscover.contoso.com"}
	d := UndoSPNs(current, []string{"https://MAIL.contoso.com", "https://autodiscover.contoso.com/"})
	if !d.Changed || !slices.Equal(d.SPNs, []string{"x", "y"}) || len(d.Removed) != 2 {
		t.Fatalf("UndoSPNs: %+v", d)
	}
	if again := UndoSPNs(d.SPNs, []string{"https://mail.contoso.com/"}); again.Changed {
		t.Errorf("second undo changed: %+v", again)
	}
}

func TestUnionSPNsProperties(t *testing.T) {
	prop := func(existing, want spnList) bool {
		checkUnion(t, existing, want)
		return true
	}
	if err := quick.Check(prop, &quick.Config{MaxCount: 5000}); err != nil {
		t.Fatal(err)
	}
}

// TestUnionSPNsPermutation checks full permutations of the wanted names,
// beyond the reversal checkUnion tries.
func TestUnionSPNsPermutation(t *testing.T) {
	prop := func(existing, want spnList, seed int64) bool {
		base := UnionSPNs(existing, want)
		shuffled := slices.Clone(want)
		newRand(seed).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		return slices.Equal(UnionSPNs(existing, shuffled).SPNs, base.SPNs)
	}
	if err := quick.Check(prop, &quick.Config{MaxCount: 3000}); err != nil {
		t.Fatal(err)
	}
}

// TestDerive21VianetSPNsBareDomain follows shared/reference/hybrid-facts.md
// (f), rows "wildcard" and "apex not covered": in 21Vianet the hosts under
// an accepted domain share its wildcard, and a server reached at the bare
// accepted domain gets that domain's own authority beside it; a host under
// no registered domain gets its own authority, never a wildcard.
func TestDerive21VianetSPNsBareDomain(t *testing.T) {
	w := contoso("china")
	w.o.VirtualDirectories = append(w.o.VirtualDirectories,
		VirtualDirectory{Kind: VDirAutodiscover, Server: "EX02", ExternalURL: "https://contoso.com/Autodiscover/Autodiscover.xml"},
		VirtualDirectory{Kind: VDirWebServices, Server: "EX03", ExternalURL: "https://ews.hosting.example.net/EWS/Exchange.asmx"},
	)
	d, _, err := Derive(w.t, w.p, w.o)
	if err != nil {
		t.Fatal(err)
	}
	// ex01/ex02.contoso.local are internal names under no registered
	// domain: one authority each.
	want := []string{fpApp + "/*.contoso.com", fpApp + "/contoso.com", fpApp + "/ews.hosting.example.net",
		fpApp + "/ex01.contoso.local", fpApp + "/ex02.contoso.local"}
	if !slices.Equal(d.SPNs, want) {
		t.Fatalf("SPNs %q, want %q", d.SPNs, want)
	}
	// Added beside an existing wildcard, never replacing it.
	u := UnionSPNs([]string{fpApp + "/*.contoso.com"}, d.SPNs)
	if !slices.Equal(u.Added, want[1:]) || u.SPNs[0] != fpApp+"/*.contoso.com" {
		t.Fatalf("union %+v", u)
	}
}

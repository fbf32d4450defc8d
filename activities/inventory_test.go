package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"
)

const oneTenant = "tenants:\n  - id: 22222222-2222-4222-8222-000000000001\n    display_name: One\n    cloud: global\n    initial_domain: one.onmicrosoft.com\n    site: site-1\n"

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// refusedAs fails the test unless err is a non-retryable application
// error of type typ whose message contains msg.
func refusedAs(t *testing.T, what string, err error, typ, msg string) {
	t.Helper()
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != typ || !app.NonRetryable() || !strings.Contains(err.Error(), msg) {
		t.Fatalf("%s: %v; want a non-retryable %s containing %q", what, err, typ, msg)
	}
	t.Logf("%s: %v", what, err)
}

// TestInventoryConfinedToDir: LoadInventoryPage reads inside Dir only:
// by absolute path (spelled through Dir as configured or with its
// symbolic links resolved) or relative to it; a ".." element, a path
// outside, a symbolic link out of Dir, a directory or a FIFO is refused,
// and so is everything when Dir is not set.
func TestInventoryConfinedToDir(t *testing.T) {
	base := t.TempDir()
	real := filepath.Join(base, "real")
	writeFile(t, filepath.Join(real, "inv.yaml"), oneTenant)
	writeFile(t, filepath.Join(real, "sub", "inv.yaml"), oneTenant)
	writeFile(t, filepath.Join(base, "outside.yaml"), oneTenant)
	link := filepath.Join(base, "link") // the configured directory is a symbolic link
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(base, "outside.yaml"), filepath.Join(real, "escape.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sub/inv.yaml", filepath.Join(real, "inside-link.yaml")); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(real, "fifo.yaml")
	if err := mkfifo(fifo); err != nil {
		t.Logf("no named pipe here (%v): a directory stands for what is not a regular file", err)
		if err := os.Mkdir(fifo, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	a := &Inventory{Dir: link}
	for _, path := range []string{
		filepath.Join(link, "inv.yaml"),
		filepath.Join(real, "inv.yaml"),
		filepath.Join(link, "sub", "inv.yaml"),
		"sub/inv.yaml",
		filepath.Join(link, "inside-link.yaml"), // a link that stays inside
	} {
		page, err := a.LoadInventoryPage(ctx, InventoryPageInput{Path: path, Limit: 10})
		if err != nil || page.Total != 1 || len(page.Tenants) != 1 {
			t.Errorf("%s: %+v, %v", path, page, err)
		}
	}
	for _, tc := range []struct{ path, msg string }{
		{filepath.Join(base, "outside.yaml"), "outside inventory.dir"},
		{link + "/../outside.yaml", `".." element`},
		{"../outside.yaml", `".." element`},
		{"sub/../../outside.yaml", `".." element`},
		{filepath.Join(link, "escape.yaml"), "cannot be opened inside inventory.dir"},
		{filepath.Join(link, "missing.yaml"), "no such file"},
		{filepath.Join(link, "sub"), "not a regular file"},
		{filepath.Join(link, "fifo.yaml"), "not a regular file"},
		{link, "outside inventory.dir"},
		{"", "not a file path"},
	} {
		_, err := a.LoadInventoryPage(ctx, InventoryPageInput{Path: tc.path, Limit: 10})
		refusedAs(t, tc.path, err, ErrInvalidInput, tc.msg)
	}
	_, err := (&Inventory{}).LoadInventoryPage(ctx, InventoryPageInput{Path: filepath.Join(real, "inv.yaml"), Limit: 10})
	refusedAs(t, "no Dir", err, ErrInvalidInput, "set inventory.dir")
	_, err = (&Inventory{Dir: filepath.Join(base, "gone")}).LoadInventoryPage(ctx, InventoryPageInput{Path: filepath.Join(base, "gone", "inv.yaml"), Limit: 10})
	refusedAs(t, "missing Dir", err, ErrInvalidInput, "cannot be used")
}

// TestInventoryHash: a page carries the SHA-256 of the bytes it was read
// from; a read that expects another hash is refused with
// InventoryChanged, naming both hashes' prefixes.
func TestInventoryHash(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "inv.yaml")
	writeFile(t, path, oneTenant)
	a := &Inventory{Dir: dir}
	ctx := context.Background()
	page, err := a.LoadInventoryPage(ctx, InventoryPageInput{Path: path, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(oneTenant))
	first := hex.EncodeToString(sum[:])
	if page.SHA256 != first {
		t.Fatalf("page hash %s; want %s", page.SHA256, first)
	}
	if _, err := a.LoadInventoryPage(ctx, InventoryPageInput{Path: path, Offset: 1, Limit: 10, SHA256: first}); err != nil {
		t.Fatalf("unchanged file: %v", err)
	}
	changed := strings.Replace(oneTenant, "display_name: One", "display_name: Uno", 1)
	writeFile(t, path, changed)
	sum = sha256.Sum256([]byte(changed))
	now := hex.EncodeToString(sum[:])
	_, err = a.LoadInventoryPage(ctx, InventoryPageInput{Path: path, Offset: 1, Limit: 10, SHA256: first})
	refusedAs(t, "changed file", err, ErrInventoryChanged, first[:12])
	if !strings.Contains(err.Error(), now[:12]) {
		t.Errorf("error %q does not name the new hash's prefix %s", err, now[:12])
	}
}

// manyTenants is an inventory of n tenants.
func manyTenants(n int) string {
	var b strings.Builder
	b.WriteString("tenants:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - id: 33333333-3333-4333-8333-%012d\n    display_name: T%[1]d\n    cloud: global\n    initial_domain: t%[1]d.onmicrosoft.com\n    site: site-%[1]d\n", i)
	}
	return b.String()
}

// TestInventoryPagesParseTheFileOnce: a rollout reads a file's pages in
// turn; after the first, a page of unchanged bytes costs fewer
// allocations than the file has tenants (parsing it again costs dozens
// per tenant), and a rewritten file is parsed again.
func TestInventoryPagesParseTheFileOnce(t *testing.T) {
	const n = 2000
	dir := t.TempDir()
	path := filepath.Join(dir, "inv.yaml")
	writeFile(t, path, manyTenants(n))
	a := &Inventory{Dir: dir}
	ctx := context.Background()
	page := func(offset int) InventoryPage {
		t.Helper()
		p, err := a.LoadInventoryPage(ctx, InventoryPageInput{Path: path, Offset: offset, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	if p := page(0); p.Total != n || len(p.Tenants) != 100 {
		t.Fatalf("first page: total %d, %d tenants", p.Total, len(p.Tenants))
	}
	offset := 100
	allocs := testing.AllocsPerRun(5, func() {
		if p := page(offset); p.Tenants[0].DisplayName != fmt.Sprintf("T%d", offset) {
			t.Fatalf("page at %d starts with %s", offset, p.Tenants[0].DisplayName)
		}
		offset += 100
	})
	if allocs >= n {
		t.Errorf("%.0f allocations per page of an unchanged %d-tenant file: parsed again", allocs, n)
	}
	writeFile(t, path, strings.Replace(manyTenants(n), "display_name: T0\n", "display_name: Zero\n", 1))
	if p := page(0); p.Tenants[0].DisplayName != "Zero" {
		t.Fatalf("after the file changed the first tenant is %s; want Zero", p.Tenants[0].DisplayName)
	}
}

// BenchmarkInventoryPages pages through a whole inventory file as a
// rollout does (100 tenants a page): "parsed per page" with a new
// Inventory for each page (the file parsed each time, as before the
// worker kept its last parse), "parsed once" with one Inventory.
func BenchmarkInventoryPages(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		dir := b.TempDir()
		path := filepath.Join(dir, "inv.yaml")
		if err := os.WriteFile(path, []byte(manyTenants(n)), 0o600); err != nil {
			b.Fatal(err)
		}
		for _, fresh := range []bool{true, false} {
			name := fmt.Sprintf("tenants=%d/parsed-once", n)
			if fresh {
				name = fmt.Sprintf("tenants=%d/parsed-per-page", n)
			}
			b.Run(name, func(b *testing.B) {
				for b.Loop() {
					a := &Inventory{Dir: dir}
					for off := 0; off < n; off += 100 {
						if fresh {
							a = &Inventory{Dir: dir}
						}
						if _, err := a.LoadInventoryPage(context.Background(), InventoryPageInput{Path: path, Offset: off, Limit: 100}); err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		}
	}
}

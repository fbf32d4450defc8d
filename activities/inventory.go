package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/hybridflow/hybridflow/internal/config"
)

// Inventory reads tenant inventories on the cloud worker, page by page, so
// that a rollout over thousands of tenants carries a file reference in its
// history instead of the whole inventory.
//
// The path comes from the workflow's input, so the worker reads only
// inside Dir, its configured inventory.dir: a path with a ".." element,
// a path outside Dir, a symbolic link leading out of it, or anything but a
// regular file is refused.
type Inventory struct {
	// Dir is the directory inventory files are read from; "" refuses
	// every path. A relative Dir is relative to the working directory.
	Dir string

	// last is the last inventory parsed, by path and SHA-256: a rollout
	// asks for every page of the same file in turn, and parsing and
	// validating the whole file for each page made a rollout's cost
	// grow with the square of its size.
	mu   sync.Mutex
	last parsedInventory
}

// parsedInventory is one inventory file's parse, by its path and the
// SHA-256 of the bytes it was parsed from.
type parsedInventory struct {
	path, sha256 string
	inv          *config.Inventory
}

// LoadInventoryPage validates the whole inventory (every problem is an
// InvalidInput error naming file, line and field) and returns one page.
// The file is read once per call: the hash and the tenants come from the
// same bytes. The bytes are parsed only when their hash is not the one
// parsed last, since the same bytes parse to the same inventory.
func (a *Inventory) LoadInventoryPage(_ context.Context, in InventoryPageInput) (InventoryPage, error) {
	data, err := a.read(in.Path)
	if err != nil {
		return InventoryPage{}, err
	}
	sum := sha256.Sum256(data)
	hash := hex.EncodeToString(sum[:])
	if in.SHA256 != "" && !strings.EqualFold(in.SHA256, hash) {
		return InventoryPage{}, nonRetryable(ErrInventoryChanged,
			"inventory %s changed after the rollout read its first page (SHA-256 then %s…, now %s…): the rollout pages through the file by position and would skip or repeat tenants; put the original file back, or start a new rollout for the new one",
			clipPath(in.Path), prefix(in.SHA256), prefix(hash))
	}
	inv, err := a.parse(in.Path, hash, data)
	if err != nil {
		return InventoryPage{}, nonRetryable(ErrInvalidInput, "inventory %s: %v", clipPath(in.Path), err)
	}
	total := len(inv.Tenants)
	lo, hi := min(max(in.Offset, 0), total), min(max(in.Offset, 0)+max(in.Limit, 0), total)
	return InventoryPage{Tenants: inv.Tenants[lo:hi], Total: total, SHA256: hash}, nil
}

// parse is config.ParseInventory of data (whose SHA-256 is hash) read
// from path, reusing the last parse of the same path and bytes. Callers
// only slice the result's tenants, never change them.
func (a *Inventory) parse(path, hash string, data []byte) (*config.Inventory, error) {
	a.mu.Lock()
	last := a.last
	a.mu.Unlock()
	if last.inv != nil && last.path == path && last.sha256 == hash {
		return last.inv, nil
	}
	inv, err := config.ParseInventory(path, data)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	a.last = parsedInventory{path: path, sha256: hash, inv: inv}
	a.mu.Unlock()
	return inv, nil
}

// prefix is the start of a hex hash, enough to tell two apart in a message.
func prefix(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// read returns the inventory file at path, confined to a.Dir, and no more
// than config.MaxInventoryBytes+1 bytes of it (a larger file is then
// refused by the parser).
func (a *Inventory) read(path string) ([]byte, error) {
	invalid := func(format string, args ...any) error {
		return nonRetryable(ErrInvalidInput, "inventory %s: "+format, append([]any{clipPath(path)}, args...)...)
	}
	if a.Dir == "" {
		return nil, invalid("this worker reads no inventory files: set inventory.dir in its configuration to the directory that holds them (a rollout of up to 100 tenants carries them inline and needs no file)")
	}
	if path == "" || strings.ContainsRune(path, 0) {
		return nil, invalid("not a file path")
	}
	if slices.Contains(strings.FieldsFunc(path, func(r rune) bool { return r == '/' || r == filepath.Separator }), "..") {
		return nil, invalid("a path with a \"..\" element is refused; name the file inside inventory.dir (%s) directly", a.Dir)
	}
	rel, root, err := a.within(path)
	if err != nil {
		return nil, invalid("%v", err)
	}
	// os.Root refuses a symbolic link that leads out of the directory.
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, invalid("inventory.dir (%s) cannot be used: %v", a.Dir, err)
	}
	defer r.Close()
	opened := func(err error) error {
		if errors.Is(err, os.ErrNotExist) {
			return invalid("no such file in inventory.dir (%s); the cloud worker must see the file at the path the CLI gave", a.Dir)
		}
		return invalid("cannot be opened inside inventory.dir (%s): %v", a.Dir, err)
	}
	// Checked before opening too: opening a FIFO would wait for a writer.
	if st, err := r.Stat(rel); err != nil {
		return nil, opened(err)
	} else if !st.Mode().IsRegular() {
		return nil, invalid("not a regular file (%s)", st.Mode().Type())
	}
	f, err := r.Open(rel)
	if err != nil {
		return nil, opened(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, invalid("%v", err)
	}
	if !st.Mode().IsRegular() {
		return nil, invalid("not a regular file (%s)", st.Mode().Type())
	}
	data, err := io.ReadAll(io.LimitReader(f, config.MaxInventoryBytes+1))
	if err != nil {
		return nil, invalid("%v", err)
	}
	return data, nil
}

// within returns path relative to the inventory directory and that
// directory, as configured or with its symbolic links resolved (the CLI
// sends an absolute path spelled one way or the other). A relative path
// is taken as relative to the directory.
func (a *Inventory) within(path string) (rel, root string, err error) {
	dir, err := filepath.Abs(a.Dir)
	if err != nil {
		return "", "", fmt.Errorf("inventory.dir %s: %w", a.Dir, err)
	}
	resolved, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", "", fmt.Errorf("inventory.dir %s cannot be used: %w", a.Dir, err)
	}
	if !filepath.IsAbs(path) {
		return filepath.Clean(path), resolved, nil
	}
	for _, base := range []string{dir, resolved} {
		if r, err := filepath.Rel(base, filepath.Clean(path)); err == nil && r != "." && r != ".." && !strings.HasPrefix(r, ".."+string(filepath.Separator)) && !filepath.IsAbs(r) {
			return r, resolved, nil
		}
	}
	return "", "", fmt.Errorf("outside inventory.dir (%s), the only directory this worker reads inventories from", a.Dir)
}

package config

import (
	"strings"
	"testing"
)

// shell.pool_size: how many PowerShell hosts (each with its own session) a
// site may run at once; absent is 1, and only 1 to MaxShellPoolSize is
// accepted, with the problem named at the field.
func TestShellPoolSize(t *testing.T) {
	doc := func(v string) string {
		s := "roles: [onprem:s1, lync:s1]\nonprem:\n  sites:\n    s1:\n      shell:\n        session: local-snapin\n"
		if v != "" {
			s += "        pool_size: " + v + "\n"
		}
		return s + "lync:\n  sites:\n    s1:\n      shell:\n        session: local-snapin\n"
	}
	for _, tc := range []struct {
		value string
		want  int
		err   string
	}{
		{"", DefaultShellPoolSize, ""},
		{"1", 1, ""},
		{"2", 2, ""},
		{"8", MaxShellPoolSize, ""},
		{"0", 0, "w.yaml:7: onprem.sites.s1.shell.pool_size: must be between 1 and 8"},
		{"9", 0, "w.yaml:7: onprem.sites.s1.shell.pool_size: must be between 1 and 8"},
		{"-1", 0, "onprem.sites.s1.shell.pool_size: must be between 1 and 8"},
		{"two", 0, "onprem.sites.s1.shell.pool_size: must be an integer"},
		{"1.5", 0, "onprem.sites.s1.shell.pool_size: must be an integer"},
	} {
		cfg, err := ParseWorkerConfig("w.yaml", []byte(doc(tc.value)), noEnv)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("pool_size %q: got %v, want %q", tc.value, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("pool_size %q: %v", tc.value, err)
			continue
		}
		if got := cfg.OnPremSites["s1"].Shell.PoolSize; got != tc.want {
			t.Errorf("pool_size %q: onprem %d, want %d", tc.value, got, tc.want)
		}
		if got := cfg.LyncSites["s1"].Shell.PoolSize; got != DefaultShellPoolSize {
			t.Errorf("pool_size %q: the Lync site (not set) got %d", tc.value, got)
		}
	}
}

// The example config documents pool_size with the values it shows.
func TestWorkerExamplePoolSize(t *testing.T) {
	cfg, err := LoadWorkerConfig("../../configs/worker.example.yaml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if a, b, l := cfg.OnPremSites["site-a"].Shell.PoolSize, cfg.OnPremSites["site-b"].Shell.PoolSize, cfg.LyncSites["site-a"].Shell.PoolSize; a != 1 || b != 2 || l != 1 {
		t.Errorf("pool_size: onprem site-a %d, site-b %d, lync site-a %d; the example shows 1, 2 and the default 1", a, b, l)
	}
}

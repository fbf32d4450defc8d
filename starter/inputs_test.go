package main

import (
	"strings"
	"testing"

	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/workflows"
)

func TestLyncInputForSite(t *testing.T) {
	inv := &config.Inventory{File: "inv.yaml", Tenants: []config.Tenant{
		{ID: "a", Cloud: "global", Site: "s1", LyncSite: "edge-1"},
		{ID: "b", Cloud: "gcc", Site: "s2", LyncSite: "edge-1"},
		{ID: "c", Cloud: "china", Site: "s3", LyncSite: "edge-2"},
		{ID: "d", Cloud: "global", Site: "s4", LyncSite: "edge-2"},
		{ID: "e", Cloud: "global", Site: "s5"},
	}}
	in, err := lyncInputForSite(inv, "edge-1", workflows.LyncOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if in.Site != "edge-1" || in.Cloud != "global" || in.Target.TenantID != "a" || in.Target.LyncSite != "edge-1" || in.Target.Site != "s1" {
		t.Fatalf("%+v", in)
	}
	if _, err := lyncInputForSite(inv, "edge-2", workflows.LyncOptions{}); err == nil || !strings.Contains(err.Error(), "exap.um.partner.outlook.cn") {
		t.Fatalf("conflict not reported: %v", err)
	}
	inv.Tenants[3].Overrides.LyncProxyFQDN = "exap.um.partner.outlook.cn"
	if _, err := lyncInputForSite(inv, "edge-2", workflows.LyncOptions{}); err != nil {
		t.Fatalf("override agrees, still: %v", err)
	}
	if _, err := lyncInputForSite(inv, "edge-3", workflows.LyncOptions{}); err == nil || !strings.Contains(err.Error(), "edge-1, edge-2") {
		t.Fatalf("unknown site: %v", err)
	}
}

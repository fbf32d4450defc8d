package sim

import "testing"

// TestFaultSkipFirstN: the first SkipFirstN matching requests of a tenant
// pass, the next FailFirstN fail, the rest pass; tenants count apart.
func TestFaultSkipFirstN(t *testing.T) {
	in := newInjector(1, []FaultRule{{Protocol: ProtoShell, Operation: "New-AuthServer", Kind: FaultFail, SkipFirstN: 1, FailFirstN: 2}})
	var got []bool
	for i := 0; i < 5; i++ {
		got = append(got, in.decide(shellReq("New-AuthServer", "t1")).Kind == FaultFail)
	}
	want := []bool{false, true, true, false, false}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("fired %v, want %v", got, want)
		}
	}
	if in.decide(shellReq("New-AuthServer", "t2")).Kind != "" || in.decide(shellReq("Get-AuthServer", "t1")).Kind != "" {
		t.Fatal("another tenant's first request, or another cmdlet, fired")
	}
}

func shellReq(cmdlet, tenant string) FaultRequest {
	return FaultRequest{Protocol: ProtoShell, Operation: cmdlet, Cmdlet: cmdlet, Tenant: tenant}
}

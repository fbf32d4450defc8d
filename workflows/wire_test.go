package workflows_test

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hybridflow/hybridflow/contract"
	"github.com/hybridflow/hybridflow/internal/plan"
)

// wireTypes are, per activity type, the contract types its input and
// result decode into (nil: none).
var wireTypes = map[string]struct{ in, out func() any }{
	contract.ActDiscoverOnPrem:                 {target, observed},
	contract.ActEnsureAuthServers:              {newOf[contract.AuthServersInput], stepResult},
	contract.ActEnablePartnerApplication:       {target, stepResult},
	contract.ActSetAuthServerApplication:       {newOf[contract.AuthServerAppInput], stepResult},
	contract.ActEnsureSettingOverride:          {newOf[contract.SettingOverrideInput], stepResult},
	contract.ActRefreshVariantConfiguration:    {target, stepResult},
	contract.ActEnsureOnPremConnector:          {newOf[contract.IOCInput], stepResult},
	contract.ActEnsureAvailabilityAddressSpace: {newOf[contract.AvailabilityInput], stepResult},
	contract.ActVerifyFromOnPrem:               {newOf[contract.VerifyInput], newOf[contract.VerifyResult]},
	contract.ActUndoOnPrem:                     {newOf[contract.UndoInput], nil},

	contract.ActDiscoverOnline:        {target, observed},
	contract.ActEnsureOnlineConnector: {newOf[contract.IOCInput], stepResult},
	contract.ActVerifyFromOnline:      {newOf[contract.VerifyInput], newOf[contract.VerifyResult]},
	contract.ActUndoOnline:            {newOf[contract.UndoInput], nil},

	contract.ActDiscoverEntra:                    {newOf[contract.EntraDiscoverInput], observed},
	contract.ActEnsureFirstPartyServicePrincipal: {newOf[contract.FirstPartyInput], stepResult},
	contract.ActEnsureDedicatedApplication:       {newOf[contract.DedicatedAppInput], stepResult},
	contract.ActEnsureDedicatedServicePrincipal:  {newOf[contract.AppIDInput], stepResult},
	contract.ActGrantDedicatedConsent:            {newOf[contract.AppIDInput], stepResult},
	contract.ActEnsureApplicationKeys:            {newOf[contract.AppKeysInput], stepResult},
	contract.ActRemoveLegacyKeys:                 {newOf[contract.RemoveLegacyKeysInput], stepResult},
	contract.ActUndoEntra:                        {newOf[contract.UndoInput], nil},

	contract.ActDiscoverLync:              {target, newOf[plan.LyncObserved]},
	contract.ActEnsureLyncEdgeFederation:  {target, lyncResult},
	contract.ActEnsureLyncHostingProvider: {newOf[contract.LyncProviderInput], lyncResult},
	contract.ActWaitLyncReplication:       {newOf[contract.LyncReplicationInput], lyncResult},
	contract.ActConfirmLyncEdgeProvider:   {newOf[contract.LyncProviderInput], lyncResult},
	contract.ActCheckLyncExternalAccess:   {target, lyncResult},
	contract.ActUndoLync:                  {newOf[contract.LyncUndoInput], nil},

	contract.ActReadAuthCertificate:           {target, newOf[contract.AuthCertificateState]},
	contract.ActCheckAuthCertificateOnServers: {newOf[contract.ServerCertificateInput], newOf[contract.ServerCertificateResult]},
	contract.ActCreateAuthCertificate:         {newOf[contract.CreateAuthCertificateInput], certResult},
	contract.ActStageAuthCertificate:          {newOf[contract.StageAuthCertificateInput], certResult},
	contract.ActPublishAuthCertificate:        {newOf[contract.AuthCertificateInput], certResult},
	contract.ActClearPreviousAuthCertificate:  {newOf[contract.AuthCertificateInput], certResult},
	contract.ActReadAuthCertificateKeys:       {newOf[contract.AuthKeysInput], newOf[contract.AuthKeysState]},
	contract.ActUploadAuthCertificateKeys:     {newOf[contract.UploadAuthKeysInput], newOf[contract.AuthKeysResult]},
	contract.ActRemoveRetiredAuthKeys:         {newOf[contract.RemoveRetiredAuthKeysInput], newOf[contract.AuthKeysResult]},

	contract.ActProbe:             {nil, newOf[contract.ProbeResult]},
	contract.ActLoadInventoryPage: {newOf[contract.InventoryPageInput], newOf[contract.InventoryPage]},

	contract.ActPlanSetup:         {newOf[contract.PlanInput], newOf[contract.PlanOutput]},
	contract.ActPlanLync:          {newOf[contract.LyncPlanInput], newOf[contract.LyncPlan]},
	contract.ActDecideRenewalMode: {newOf[contract.RenewalModeInput], newOf[contract.RenewalModeOutput]},
	contract.ActDecideRenewal:     {newOf[plan.RenewalFacts], newOf[plan.RenewalDecision]},
}

func newOf[T any]() any { return new(T) }

var (
	target     = newOf[contract.Target]
	observed   = newOf[plan.Observed]
	stepResult = newOf[contract.StepResult]
	lyncResult = newOf[contract.LyncStepResult]
	certResult = newOf[contract.AuthCertificateResult]
)

type wirePayloads struct {
	Payloads []struct {
		Data []byte `json:"data"`
	} `json:"payloads"`
}

type wireEvent struct {
	EventID   string `json:"eventId"`
	EventType string `json:"eventType"`
	Scheduled *struct {
		ActivityType struct{ Name string } `json:"activityType"`
		Input        wirePayloads          `json:"input"`
	} `json:"activityTaskScheduledEventAttributes"`
	Completed *struct {
		ScheduledEventID string       `json:"scheduledEventId"`
		Result           wirePayloads `json:"result"`
	} `json:"activityTaskCompletedEventAttributes"`
	Marker *struct {
		MarkerName string `json:"markerName"`
		Details    struct {
			Data   wirePayloads `json:"data"`
			Result wirePayloads `json:"result"`
		} `json:"details"`
	} `json:"markerRecordedEventAttributes"`
}

// strictDecode decodes one JSON payload into v, refusing any field v does
// not have: a field a recorded history carries that the contract type
// lacks (renamed or dropped) would be lost on replay.
func strictDecode(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

// TestRecordedPayloadsDecodeIntoContract: every activity input and result
// recorded in testdata/histories (task-queue activities and local
// activities alike) decodes into its contract type without an unknown
// field: the JSON field names of the contract types are the ones recorded
// before they moved into package contract (and the Lync undo record,
// which embedded the common record and added provider, is the one
// contract.UndoRecord).
func TestRecordedPayloadsDecodeIntoContract(t *testing.T) {
	checked := map[string]int{}
	err := filepath.WalkDir("testdata/histories", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var h struct{ Events []wireEvent }
		if err := json.Unmarshal(raw, &h); err != nil {
			t.Errorf("%s: %v", path, err)
			return nil
		}
		scheduled := map[string]string{}
		check := func(ev, act, dir string, p wirePayloads, newV func() any) {
			if newV == nil || len(p.Payloads) == 0 {
				return
			}
			if err := strictDecode(p.Payloads[0].Data, newV()); err != nil {
				t.Errorf("%s event %s: %s %s: %v\n%s", path, ev, act, dir, err, p.Payloads[0].Data)
			}
			checked[act+" "+dir]++
		}
		for _, e := range h.Events {
			switch {
			case e.Scheduled != nil:
				name := e.Scheduled.ActivityType.Name
				scheduled[e.EventID] = name
				w, ok := wireTypes[name]
				if !ok {
					t.Errorf("%s event %s: activity %s has no contract types in wireTypes", path, e.EventID, name)
					continue
				}
				check(e.EventID, name, "input", e.Scheduled.Input, w.in)
			case e.Completed != nil:
				name := scheduled[e.Completed.ScheduledEventID]
				check(e.EventID, name, "result", e.Completed.Result, wireTypes[name].out)
			case e.Marker != nil && e.Marker.MarkerName == "LocalActivity":
				var m struct{ ActivityType string }
				if len(e.Marker.Details.Data.Payloads) == 0 || json.Unmarshal(e.Marker.Details.Data.Payloads[0].Data, &m) != nil {
					t.Errorf("%s event %s: unreadable local activity marker", path, e.EventID)
					continue
				}
				w, ok := wireTypes[m.ActivityType]
				if !ok {
					t.Errorf("%s event %s: local activity %s has no contract types in wireTypes", path, e.EventID, m.ActivityType)
					continue
				}
				check(e.EventID, m.ActivityType, "result", e.Marker.Details.Result, w.out)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(checked) == 0 {
		t.Fatal("no activity payload found in testdata/histories")
	}
	for _, k := range []string{"UndoLync input", "EnsureLyncHostingProvider result", "PlanSetup result", "UndoOnPrem input"} {
		if checked[k] == 0 {
			t.Errorf("no recorded %s was checked", k)
		}
	}
	t.Logf("%d kinds of payload checked: %v", len(checked), checked)
}

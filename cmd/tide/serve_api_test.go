package main

import (
	"encoding/json"
	"testing"
)

// TestReleaseViewIsRollbackList: GET /api/releases answers the JSON of
// tide rollback --list --output json, field for field.
func TestReleaseViewIsRollbackList(t *testing.T) {
	for _, l := range []releaseList{
		{App: "site", Current: "1.1", Rollback: "1.0",
			History: []releaseRow{{Revision: "1.0", State: "earlier", Hosts: []string{"web-1"}}, {Revision: "1.1", State: "current", Hosts: []string{"web-1"}},
				{Revision: "1.2", State: "rolled back from", Hosts: []string{}}, {Revision: "0.9", State: "on hosts only", Hosts: []string{"web-2"}}},
			Hosts: []hostReleases{{Label: "web-1", Role: "web", Answered: true, Current: "1.1", Releases: []string{"1.0", "1.1"}},
				{Label: "web-2", Role: "web", Releases: []string{}}}},
		{App: "db", Current: "16", History: []releaseRow{}, Hosts: []hostReleases{}},
	} {
		cli, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		api, err := json.Marshal(releaseView(l))
		if err != nil {
			t.Fatal(err)
		}
		if string(cli) != string(api) {
			t.Errorf("the API's releases differ from tide rollback --list's:\n cli %s\n api %s", cli, api)
		}
	}
}

package api_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/alerting"
	"github.com/datapulse/datapulse/core/principal"
	"github.com/datapulse/datapulse/core/store/storetest"
	"github.com/datapulse/datapulse/ent/alertnotification"
	"github.com/datapulse/datapulse/policy"
)

// Alerts over HTTP: channel secrets never come back; a one-click link's GET
// is a confirmation page that changes nothing, its POST acknowledges as the
// recipient; tampered links are refused.
func TestAlertsHTTP(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		e := newEnv(t, tg)
		ctx := principal.System(context.Background())
		c := e.store.Client
		ownerID, owner := e.createUser("alert-owner@example.com", "user")
		colleagueID, colleague := e.createUser("alert-colleague@example.com", "user")
		oid := uuid.MustParse(ownerID)
		src := c.DataSource.Create().SetName("none").SetType("none").SaveX(ctx)
		m := c.DataModel.Create().SetUserID(oid).SetName("M").SetConfig(matrixModelConfig(src.ID)).SaveX(ctx)
		e.facts.SetOwner(policy.KindModel, m.ID, oid)

		body := map[string]any{"metric": "Orders", "threshold_type": "below", "threshold_value": 10,
			"source": map[string]any{"model_id": m.ID.String(), "measure": "orders"},
			"channels": []any{
				map[string]any{"type": "webhook", "target": "https://hooks.example.com/dp", "secret": "super-secret-webhook-key"},
				map[string]any{"type": "slack", "target": "https://hooks.slack.com/services/T000/B000/SLACKSECRET"},
				map[string]any{"type": "email", "target": "alert-colleague@example.com"},
			}}
		r := e.want(e.do("POST", "/api/v1/alerts", owner, body), 201, "create alert")
		id := r.str("id")
		for _, raw := range []string{string(r.raw), string(e.want(e.do("GET", "/api/v1/alerts/"+id, owner, nil), 200, "get").raw),
			string(e.want(e.do("GET", "/api/v1/alerts", owner, nil), 200, "list").raw)} {
			if strings.Contains(raw, "super-secret") || strings.Contains(raw, "SLACKSECRET") {
				t.Fatalf("a channel secret is in a response: %s", raw)
			}
		}
		if !strings.Contains(string(r.raw), `"secret_set":true`) {
			t.Errorf("webhook channel without secret_set: %s", r.raw)
		}
		// Validation answers in the envelope with the field.
		bad := e.do("POST", "/api/v1/alerts", owner, map[string]any{"metric": "x", "threshold_type": "above", "threshold_value": 1,
			"source": map[string]any{"model_id": m.ID.String(), "measure": "nope"}})
		if bad.status != 400 || !strings.Contains(string(bad.raw), "source.measure") {
			t.Errorf("unknown measure: %d %s", bad.status, bad.raw)
		}
		// The evaluation runs (the source has no connector: error state).
		ev := e.want(e.do("POST", "/api/v1/alerts/"+id+"/evaluate", owner, nil), 200, "evaluate")
		if ev.str("state") != "error" || !strings.Contains(string(ev.raw), "data model failed") {
			t.Errorf("evaluation: %s", ev.raw)
		}
		e.want(e.do("GET", "/api/v1/alerts/"+id, colleague, nil), 404, "colleague reads the alert")

		// A firing, written as the evaluation would.
		aid := uuid.MustParse(id)
		inst := c.AlertInstance.Create().SetAlertID(aid).SetGroupKey("x").SetState("alerting").SetVersion(1).SaveX(ctx)
		evt := c.AlertEvent.Create().SetAlertID(aid).SetInstanceID(inst.ID).SetFromState("normal").SetToState("alerting").
			SetThresholdValue(10).SetSeq(1).SaveX(ctx)
		n := c.AlertNotification.Create().SetAlertID(aid).SetUserID(uuid.MustParse(colleagueID)).SetInstanceID(inst.ID).SetEventID(evt.ID).SaveX(ctx)
		list := e.want(e.do("GET", "/api/v1/alert-notifications?state=open", colleague, nil), 200, "colleague's notifications")
		if !strings.Contains(string(list.raw), n.ID.String()) {
			t.Errorf("colleague's list: %s", list.raw)
		}

		tok := e.alerts.LinkFor(n.ID, uuid.MustParse(colleagueID), alerting.ActionAcknowledge, time.Hour)
		get := func(path string) (int, string) {
			res, err := http.Get(e.base + path)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			return res.StatusCode, string(b)
		}
		st, page := get("/api/v1/alert-links/" + tok)
		if st != 200 || !strings.Contains(page, `<form method="post"`) || !strings.Contains(page, "Orders") {
			t.Fatalf("confirmation page: %d %s", st, page)
		}
		if s := c.AlertNotification.GetX(ctx, n.ID).State; s != alertnotification.StateOpen {
			t.Fatalf("GET changed the notification to %s", s)
		}
		tampered := tok[:len(tok)-2] + "AA"
		if tampered == tok {
			tampered = tok[:len(tok)-2] + "BB"
		}
		e.want(e.do("POST", "/api/v1/alert-links/"+tampered, "", nil), 404, "tampered link")
		res, err := http.Post(e.base+"/api/v1/alert-links/"+tok, "application/x-www-form-urlencoded", nil)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("POST link: %d", res.StatusCode)
		}
		got := c.AlertNotification.GetX(ctx, n.ID)
		if got.State != alertnotification.StateAcknowledged || got.AcknowledgedBy == nil || got.AcknowledgedBy.String() != colleagueID {
			t.Fatalf("after POST: %+v", got)
		}
		// Resolve by the owner through the API; a stranger cannot.
		_, stranger := e.createUser("stranger-alerts@example.com", "user")
		e.want(e.do("POST", "/api/v1/alert-notifications/"+n.ID.String()+"/resolve", stranger, nil), 404, "stranger resolves")
		rr := e.want(e.do("POST", "/api/v1/alert-notifications/"+n.ID.String()+"/resolve", owner, nil), 200, "owner resolves")
		if rr.str("state") != "resolved" || rr.str("resolution") != "manual" {
			t.Errorf("resolved: %s", rr.raw)
		}
		e.want(e.do("POST", "/api/v1/alert-notifications/"+n.ID.String()+"/acknowledge", colleague, nil), 409, "ack after resolve")
	})
}

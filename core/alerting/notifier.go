package alerting

import (
	"context"
	"fmt"
	"strconv"

	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/notify"
	"github.com/datapulse/datapulse/ent"
	"github.com/datapulse/datapulse/ent/schema/types"
)

// NotifyTester sends test messages through core/notify.
type NotifyTester struct{ N *notify.Notifier }

// clearChannel is a stored channel with its secret opened.
func clearChannel(c types.AlertChannel, secret string) notify.Channel {
	ch := notify.Channel{Type: notify.Type(c.Type), Target: c.Target}
	switch c.Type {
	case "slack":
		ch.Target = secret // the stored target is redacted; the URL is the secret
	case "webhook":
		ch.Secret = secret
	}
	return ch
}

// Test implements Tester: one attempt, no retries.
func (t NotifyTester) Test(ctx context.Context, a *ent.Alert, c types.AlertChannel, secret string) error {
	if t.N == nil {
		return ErrNoChannels
	}
	cond := map[string]string{"above": ">", "below": "<", "equal": "=", "not_equal": "≠"}[string(a.ThresholdType)]
	msg := notify.Message{
		DeliveryID: "test-" + uuid.Must(uuid.NewV7()).String(),
		Event:      "alert.test",
		Title:      fmt.Sprintf("Test notification: %s", a.Metric),
		Text:       fmt.Sprintf("This is a test of the alert %q (fires when the value is %s %s). Nothing has fired.", a.Metric, cond, strconv.FormatFloat(a.ThresholdValue, 'g', -1, 64)),
		Fields:     []notify.Field{{Name: "Threshold", Value: cond + " " + strconv.FormatFloat(a.ThresholdValue, 'g', -1, 64)}},
		LinkPath:   "/alerts/" + a.ID.String(),
		Data:       map[string]any{"alert_id": a.ID.String(), "test": true},
	}
	return t.N.Send(ctx, clearChannel(c, secret), msg).Err
}

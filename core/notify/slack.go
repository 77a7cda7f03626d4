package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"
)

// Block Kit limits (https://api.slack.com/reference/block-kit/blocks).
const (
	slackHeaderMax  = 150
	slackSectionMax = 3000
	slackFieldMax   = 2000
	slackFieldsMax  = 10
	slackButtonMax  = 75
)

// SlackMessage is the Block Kit body posted to an incoming webhook.
type SlackMessage struct {
	// Text is the notification fallback (plain).
	Text   string       `json:"text"`
	Blocks []SlackBlock `json:"blocks"`
}

// SlackBlock is one Block Kit block (only the kinds DataPulse sends).
type SlackBlock struct {
	Type     string         `json:"type"`
	Text     *SlackText     `json:"text,omitempty"`
	Fields   []SlackText    `json:"fields,omitempty"`
	Elements []SlackElement `json:"elements,omitempty"`
}

// SlackText is a text object.
type SlackText struct {
	Type  string `json:"type"` // plain_text or mrkdwn
	Text  string `json:"text"`
	Emoji bool   `json:"emoji,omitempty"`
}

// SlackElement is an element of an actions or context block.
type SlackElement struct {
	Type string `json:"type"` // button, mrkdwn
	// Text is a *SlackText for a button, a string for a mrkdwn context element.
	Text     any    `json:"text,omitempty"`
	URL      string `json:"url,omitempty"`
	ActionID string `json:"action_id,omitempty"`
}

// SlackBlocks builds the Block Kit message of msg: a header (title), a
// section (text), a section of fields (e.g. value and threshold), a button
// linking back to DataPulse (when there is a link) and a context line with
// the delivery id.
func SlackBlocks(msg Message, link string) SlackMessage {
	title := truncate(oneLine(msg.Title), slackHeaderMax)
	if title == "" {
		title = "DataPulse notification"
	}
	out := SlackMessage{Text: title}
	out.Blocks = append(out.Blocks, SlackBlock{Type: "header", Text: &SlackText{Type: "plain_text", Text: title, Emoji: true}})
	if msg.Text != "" {
		out.Blocks = append(out.Blocks, SlackBlock{Type: "section", Text: &SlackText{Type: "mrkdwn", Text: truncate(slackEscape(msg.Text), slackSectionMax)}})
	}
	if len(msg.Fields) > 0 {
		var fields []SlackText
		for i, f := range msg.Fields {
			if i == slackFieldsMax {
				break
			}
			fields = append(fields, SlackText{Type: "mrkdwn", Text: truncate("*"+slackEscape(oneLine(f.Name))+"*\n"+slackEscape(f.Value), slackFieldMax)})
		}
		out.Blocks = append(out.Blocks, SlackBlock{Type: "section", Fields: fields})
	}
	if link != "" {
		out.Blocks = append(out.Blocks, SlackBlock{Type: "actions", Elements: []SlackElement{{
			Type:     "button",
			Text:     &SlackText{Type: "plain_text", Text: truncate(linkText(msg), slackButtonMax)},
			URL:      link,
			ActionID: "datapulse_open",
		}}})
	}
	out.Blocks = append(out.Blocks, SlackBlock{Type: "context", Elements: []SlackElement{{
		Type: "mrkdwn", Text: "DataPulse · delivery " + slackEscape(truncate(oneLine(msg.DeliveryID), 100)),
	}}})
	return out
}

// SendSlack posts msg to a Slack incoming webhook (one attempt). Errors name
// the masked URL only.
func (n *Notifier) SendSlack(ctx context.Context, target string, msg Message) Result {
	res := Result{Type: TypeSlack, DeliveryID: msg.DeliveryID}
	body, err := json.Marshal(SlackBlocks(msg, n.link(msg)))
	if err != nil {
		res.Err, res.Permanent = fmt.Errorf("slack: encode body: %w", err), true
		return res
	}
	hdr := http.Header{}
	if msg.DeliveryID != "" {
		hdr.Set(HeaderDelivery, msg.DeliveryID)
	}
	res.Status, res.Err, res.Permanent = n.post(ctx, "slack", target, maskSlack(target), hdr, body, nil)
	return res
}

// slackEscape escapes the three characters mrkdwn reserves.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// truncate cuts s to at most max runes, ending in "…" when cut.
func truncate(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max-1]) + "…"
}

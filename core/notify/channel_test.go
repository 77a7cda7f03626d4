package notify_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/datapulse/datapulse/core/egress"
	"github.com/datapulse/datapulse/core/notify"
	"github.com/datapulse/datapulse/core/secrets"
)

const slackURL = "https://hooks.slack.com/services/T0001/B0002/abcdefSLACKTOKEN"

func TestChannelValidate(t *testing.T) {
	allow := egress.MustParseAllowList("hooks.internal,10.1.0.0/16")
	ok := []notify.Channel{
		{Type: notify.TypeEmail, Target: "ops@example.org"},
		{Type: notify.TypeEmail, Target: "first.last+alerts@sub.example.co.uk"},
		{Type: notify.TypeWebhook, Target: "https://receiver.example.com/hook?x=1", Secret: webhookSecret},
		{Type: notify.TypeWebhook, Target: "http://hooks.internal:8080/in", Secret: webhookSecret},
		{Type: notify.TypeWebhook, Target: "http://10.1.2.3/in", Secret: webhookSecret},
		{Type: notify.TypeSlack, Target: slackURL},
		{Type: notify.TypeSlack, Target: "http://hooks.internal/mattermost/hooks/xyz"},
	}
	for _, c := range ok {
		if err := c.Validate(allow); err != nil {
			t.Errorf("%+v: %v", c.Redacted(), err)
		}
	}
	bad := []struct {
		c    notify.Channel
		want string
	}{
		{notify.Channel{Type: "sms", Target: "+123"}, "type must be"},
		{notify.Channel{Type: notify.TypeEmail, Target: ""}, "empty"},
		{notify.Channel{Type: notify.TypeEmail, Target: "not an address"}, "plain email address"},
		{notify.Channel{Type: notify.TypeEmail, Target: "Ops <ops@example.org>"}, "plain email address"},
		{notify.Channel{Type: notify.TypeEmail, Target: "ops@example.org\r\nBcc: x@evil.example"}, "control characters"},
		{notify.Channel{Type: notify.TypeEmail, Target: "a@b.example,c@d.example"}, "plain email address"},
		{notify.Channel{Type: notify.TypeEmail, Target: "ops@example.org", Secret: "x"}, "no secret"},
		{notify.Channel{Type: notify.TypeWebhook, Target: "http://receiver.example.com/hook", Secret: webhookSecret}, "https://"},
		{notify.Channel{Type: notify.TypeWebhook, Target: "ftp://receiver.example.com/hook", Secret: webhookSecret}, "https://"},
		{notify.Channel{Type: notify.TypeWebhook, Target: "file:///etc/passwd", Secret: webhookSecret}, "https://"},
		{notify.Channel{Type: notify.TypeWebhook, Target: "https://user:pw@receiver.example.com/", Secret: webhookSecret}, "user:password"},
		{notify.Channel{Type: notify.TypeWebhook, Target: "https://receiver.example.com/#frag", Secret: webhookSecret}, "fragment"},
		{notify.Channel{Type: notify.TypeWebhook, Target: "https://receiver.example.com:0/", Secret: webhookSecret}, "port"},
		{notify.Channel{Type: notify.TypeWebhook, Target: "https://receiver.example.com/", Secret: "short"}, "secret must be"},
		{notify.Channel{Type: notify.TypeWebhook, Target: "https://receiver.example.com/"}, "secret must be"},
		{notify.Channel{Type: notify.TypeWebhook, Target: "https://192.168.1.1/", Secret: webhookSecret}, "192.168.1.1 is a private address"},
		{notify.Channel{Type: notify.TypeWebhook, Target: "https://[fd00:ec2::254]/", Secret: webhookSecret}, "cloud metadata"},
		{notify.Channel{Type: notify.TypeWebhook, Target: "https:///nohost", Secret: webhookSecret}, "host"},
		{notify.Channel{Type: notify.TypeWebhook, Target: "https://2130706433/", Secret: webhookSecret}, "numeric IP spelling"},
		{notify.Channel{Type: notify.TypeWebhook, Target: "https://0x7f.1/", Secret: webhookSecret}, "numeric IP spelling"},
		{notify.Channel{Type: notify.TypeWebhook, Target: "https://0177.0.0.1/", Secret: webhookSecret}, "numeric IP spelling"},
		{notify.Channel{Type: notify.TypeWebhook, Target: "https://[::ffff:a9fe:a9fe]/", Secret: webhookSecret}, "cloud metadata"},
		{notify.Channel{Type: notify.TypeSlack, Target: "https://hooks.slack.com.evil.example/services/T/B/X"}, "incoming-webhook URL"},
		{notify.Channel{Type: notify.TypeSlack, Target: "https://hooks.slack.com/api/other"}, "incoming-webhook URL"},
		{notify.Channel{Type: notify.TypeSlack, Target: "http://hooks.slack.com/services/T/B/X"}, "https://"},
		{notify.Channel{Type: notify.TypeSlack, Target: slackURL, Secret: webhookSecret}, "no secret"},
		{notify.Channel{Type: notify.TypeSlack, Target: "https://hooks.slack.com/services/T/B/SLACK%zzTOKEN"}, "not a URL"},
	}
	for _, b := range bad {
		err := b.c.Validate(allow)
		if err == nil || !errors.Is(err, notify.ErrInvalidChannel) || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%s %q: want error containing %q, got %v", b.c.Type, b.c.Target, b.want, err)
			continue
		}
		if strings.Contains(err.Error(), "TOKEN") || (b.c.Secret != "" && strings.Contains(err.Error(), b.c.Secret)) {
			t.Errorf("error leaks a credential: %v", err)
		}
	}
}

func TestChannelSealOpenRedact(t *testing.T) {
	box, err := secrets.New([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []notify.Channel{
		{Type: notify.TypeEmail, Target: "ops@example.org"},
		{Type: notify.TypeWebhook, Target: "https://receiver.example.com/hook?token=QUERYTOKEN", Secret: webhookSecret},
		{Type: notify.TypeSlack, Target: slackURL},
	} {
		s, err := c.Seal(box, "alert_channel/42")
		if err != nil {
			t.Fatal(err)
		}
		stored, _ := json.Marshal(s)
		for _, leak := range []string{webhookSecret, "SLACKTOKEN"} {
			if strings.Contains(string(stored), leak) {
				t.Fatalf("stored form leaks %q: %s", leak, stored)
			}
		}
		back, err := s.Open(box, "alert_channel/42")
		if err != nil || back != c {
			t.Fatalf("open: %+v, %v", back, err)
		}
		if _, err := s.Open(box, "alert_channel/43"); c.Type != notify.TypeEmail && !errors.Is(err, secrets.ErrDecrypt) {
			t.Fatalf("opened under another binding: %v", err)
		}
		shown, _ := json.Marshal(s.Redacted())
		if r := c.Redacted(); r != s.Redacted() {
			t.Fatalf("redacted forms differ: %+v vs %+v", r, s.Redacted())
		}
		for _, leak := range []string{webhookSecret, "SLACKTOKEN", "QUERYTOKEN"} {
			if strings.Contains(string(shown), leak) {
				t.Fatalf("redacted form leaks %q: %s", leak, shown)
			}
		}
		switch c.Type {
		case notify.TypeWebhook:
			if string(shown) != `{"type":"webhook","target":"https://receiver.example.com/hook?…","secret_set":true}` {
				t.Fatalf("webhook shown as %s", shown)
			}
		case notify.TypeSlack:
			if string(shown) != `{"type":"slack","target":"https://hooks.slack.com/services/…","secret_set":false}` {
				t.Fatalf("slack shown as %s", shown)
			}
		case notify.TypeEmail:
			if string(shown) != `{"type":"email","target":"ops@example.org","secret_set":false}` {
				t.Fatalf("email shown as %s", shown)
			}
		}
	}
}

func FuzzChannelValidate(f *testing.F) {
	seeds := []struct{ typ, target, secret string }{
		{"email", "ops@example.org", ""},
		{"email", "a@b", ""},
		{"email", "\"x y\"@example.org", ""},
		{"webhook", "https://receiver.example.com/hook", webhookSecret},
		{"webhook", "http://hooks.internal/x", webhookSecret},
		{"webhook", "https://[::ffff:127.0.0.1]/", webhookSecret},
		{"webhook", "https://0x7f.1/", webhookSecret},
		{"webhook", "https://2130706433/", webhookSecret},
		{"slack", slackURL, ""},
		{"slack", "https://hooks.slack.com:443/services/x", ""},
		{"slack", "https://hooks.slack.com/services/%zz", ""},
		{"sms", "x", ""},
	}
	for _, s := range seeds {
		f.Add(s.typ, s.target, s.secret)
	}
	allow := egress.MustParseAllowList("hooks.internal,10.1.0.0/16")
	f.Fuzz(func(t *testing.T, typ, target, secret string) {
		c := notify.Channel{Type: notify.Type(typ), Target: target, Secret: secret}
		err := c.Validate(allow)
		if err != nil {
			if !errors.Is(err, notify.ErrInvalidChannel) {
				t.Fatalf("error not typed: %v", err)
			}
			if len(secret) >= 8 && strings.Contains(err.Error(), secret) {
				t.Fatalf("error repeats the secret: %v", err)
			}
			if c.Type == notify.TypeSlack && len(target) >= 8 && strings.Contains(err.Error(), target) {
				t.Fatalf("error repeats the slack URL: %v", err)
			}
			return
		}
		switch c.Type {
		case notify.TypeEmail:
			if strings.ContainsAny(target, "\r\n<>,") || !strings.Contains(target, "@") {
				t.Fatalf("accepted email %q", target)
			}
		case notify.TypeWebhook, notify.TypeSlack:
			if !strings.HasPrefix(target, "https://") && !strings.HasPrefix(target, "http://") {
				t.Fatalf("accepted URL %q", target)
			}
			if c.Type == notify.TypeWebhook && (len(secret) < notify.MinWebhookSecret || len(secret) > notify.MaxWebhookSecret) {
				t.Fatalf("accepted secret of %d bytes", len(secret))
			}
			r := c.Redacted()
			if c.Type == notify.TypeSlack && strings.Contains(target, "/services/") && len(target) > 40 && r.Target == target {
				t.Fatalf("slack URL shown unmasked: %q", target)
			}
			if secret != "" && strings.Contains(r.Target, secret) && len(secret) >= 8 {
				t.Fatalf("secret in redacted target")
			}
		default:
			t.Fatalf("accepted type %q", typ)
		}
	})
}

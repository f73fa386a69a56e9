package mail_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/hostportal/idp/mail"
)

func TestConsoleLogsMessage(t *testing.T) {
	var buf bytes.Buffer
	c := mail.Console{Log: slog.New(slog.NewJSONHandler(&buf, nil)), From: testFrom}
	if err := c.Send(t.Context(), testMessage); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if err := c.Check(t.Context()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	var line struct {
		Level, Msg, From, To, Subject, Text string
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log %q is not one JSON line: %v", buf.String(), err)
	}
	want := struct{ Level, Msg, From, To, Subject, Text string }{
		"INFO", "email (console provider, not sent)", testFrom, testTo, testMessage.Subject, testMessage.Text,
	}
	if line != want {
		t.Errorf("logged %+v, want %+v", line, want)
	}
	if n := bytes.Count(buf.Bytes(), []byte("\n")); n != 1 {
		t.Errorf("logged %d lines, want 1", n)
	}
}

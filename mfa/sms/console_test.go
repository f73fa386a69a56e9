package sms_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/hostportal/idp/mfa/sms"
)

func TestConsoleLogsMessage(t *testing.T) {
	var buf bytes.Buffer
	c := sms.Console{Log: slog.New(slog.NewJSONHandler(&buf, nil))}
	if err := c.Send(t.Context(), testTo, testBody); err != nil {
		t.Fatalf("Send: %v", err)
	}
	var line struct {
		Level, Msg, To, Body string
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log %q is not one JSON line: %v", buf.String(), err)
	}
	want := struct{ Level, Msg, To, Body string }{"INFO", "sms (console provider, not sent)", testTo, testBody}
	if line != want {
		t.Errorf("logged %+v, want %+v", line, want)
	}
	if n := bytes.Count(buf.Bytes(), []byte("\n")); n != 1 {
		t.Errorf("logged %d lines, want 1", n)
	}
}

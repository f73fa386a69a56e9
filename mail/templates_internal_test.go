package mail

import (
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// fsWith is the embedded templates with some files replaced (nil: removed).
func fsWith(t *testing.T, change map[string]*string) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	entries, err := files.ReadDir("templates")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := files.ReadFile("templates/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		m["templates/"+e.Name()] = &fstest.MapFile{Data: b}
	}
	for name, data := range change {
		if data == nil {
			delete(m, "templates/"+name)
		} else {
			m["templates/"+name] = &fstest.MapFile{Data: []byte(*data)}
		}
	}
	return m
}

func ptr(s string) *string { return &s }

func TestParseRefusesBrokenTemplates(t *testing.T) {
	for _, tt := range []struct {
		name   string
		change map[string]*string
		want   string // in the error
	}{
		{"missing text", map[string]*string{"notice.txt": nil}, "notice.txt"},
		{"missing html", map[string]*string{"reset_link.html": nil}, "reset_link.html"},
		{"missing layout", map[string]*string{"layout.html": nil}, "layout.html"},
		{"syntax error", map[string]*string{"confirm_email.txt": ptr("Hello {{.Username")}, "confirm_email.txt"},
		{"unknown field", map[string]*string{"reset_link.txt": ptr("{{.Token}}")}, "Token"},
		{"unknown field in html", map[string]*string{"notice.html": ptr(`{{template "layout" .}}{{define "title"}}{{.Nope}}{{end}}{{define "why"}}{{end}}{{define "content"}}{{end}}`)}, "Nope"},
		{"html without its blocks", map[string]*string{"confirm_email.html": ptr(`{{template "layout" .}}`)}, "confirm_email.html"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(fsWith(t, tt.change))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("parse: %v, want an error naming %q", err, tt.want)
			}
		})
	}
	if _, err := parse(fsWith(t, nil)); err != nil {
		t.Errorf("parse of the embedded templates: %v", err)
	}
}

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Hour:        "1 hour",
		2 * time.Hour:    "2 hours",
		24 * time.Hour:   "24 hours",
		72 * time.Hour:   "3 days",
		90 * time.Minute: "90 minutes",
		time.Minute:      "1 minute",
		15 * time.Minute: "15 minutes",
		30 * time.Second: "30 seconds",
	} {
		if got := duration(d); got != want {
			t.Errorf("duration(%v) = %q, want %q", d, got, want)
		}
	}
}

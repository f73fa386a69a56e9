package main

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"
)

// assets are the page templates and the stylesheet, built into the binary.
//
//go:embed templates/*.html static/style.css
var assets embed.FS

// pageNames are the pages the portal renders; the portal refuses to start if
// one is missing.
var pageNames = []string{"home", "error"}

// pages holds one parsed template per page, each with the shared layout.
type pages struct {
	byName map[string]*template.Template
}

func loadPages() (*pages, error) {
	pg := &pages{byName: make(map[string]*template.Template)}
	for _, name := range pageNames {
		t, err := template.ParseFS(assets, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("load page %q: %w", name, err)
		}
		pg.byName[name] = t
	}
	return pg, nil
}

// render writes a page. It renders into a buffer first, so that a template
// error becomes a clean 500 rather than half a page.
func (pg *pages) render(w http.ResponseWriter, r *http.Request, status int, name string, data any, log *slog.Logger) {
	var buf bytes.Buffer
	if err := pg.byName[name].ExecuteTemplate(&buf, "layout", data); err != nil {
		log.Error("render page", "page", name, "path", r.URL.Path, "err", err)
		http.Error(w, "Something went wrong.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if _, err := buf.WriteTo(w); err != nil {
		log.Debug("write page", "page", name, "err", err)
	}
}

// homePage is the data of templates/home.html.
type homePage struct {
	LoggedIn bool
	Notice   string
	CSRF     string

	Name              string
	AMR               []string // authentication methods (RFC 8176): pwd, otp, sms, hwk, mfa
	ACR               string   // pwd or mfa
	Claims            []claimRow
	ClaimsJSON        string
	HasRefreshToken   bool
	AccessTokenExpiry time.Time
	// AccountURL is the provider's account page, where users turn
	// 2-Factor Auth on: a portal links it from its "<Your Name>" menu.
	AccountURL string
}

// claimRow is one line of the claims table.
type claimRow struct {
	Name      string
	Value     string
	Note      string // a reading of the value, such as a date
	Highlight bool   // amr and acr: what the second factor changes
}

// errorPage is the data of templates/error.html. Its words are for the user:
// details go to the log.
type errorPage struct {
	Title     string
	Message   string
	ErrorCode string // the OAuth error code the provider sent, if any
	RetryURL  string // where "Try again" leads; no link when empty
}

// timeClaims hold seconds since the epoch; the page also shows them as dates.
var timeClaims = map[string]bool{"exp": true, "iat": true, "nbf": true, "auth_time": true, "updated_at": true}

// fillClaims fills the claims part of the home page from a verified ID
// token's payload.
func fillClaims(data *homePage, payload json.RawMessage) error {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber() // keep numbers as the provider wrote them
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil {
		return fmt.Errorf("decode ID token claims: %w", err)
	}
	pretty, err := json.MarshalIndent(claims, "", "  ") // keys sorted
	if err != nil {
		return fmt.Errorf("encode ID token claims: %w", err)
	}
	data.ClaimsJSON = string(pretty)

	var c idClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return fmt.Errorf("decode ID token claims: %w", err)
	}
	data.Name = firstNonEmpty(c.Name, c.PreferredUsername, c.Email, c.Subject)
	data.AMR = c.AMR
	data.ACR = c.ACR

	names := make([]string, 0, len(claims))
	for name := range claims {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		row := claimRow{Name: name, Highlight: name == "amr" || name == "acr"}
		switch v := claims[name].(type) {
		case string:
			row.Value = v
		default:
			b, err := json.Marshal(v)
			if err != nil {
				return fmt.Errorf("encode claim %q: %w", name, err)
			}
			row.Value = string(b)
		}
		if n, ok := claims[name].(json.Number); ok && timeClaims[name] {
			if secs, err := n.Int64(); err == nil {
				row.Note = time.Unix(secs, 0).UTC().Format("2006-01-02 15:04:05 MST")
			}
		}
		data.Claims = append(data.Claims, row)
	}
	return nil
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if strings.TrimSpace(v) != "" {
			return v
		}
	}
	return ""
}

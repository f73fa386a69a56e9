package idp

import (
	"context"

	"github.com/hostportal/idp/mfa"
	"github.com/hostportal/idp/storage"
	"github.com/hostportal/idp/templates"
)

// activityLabels are the audit events the account page lists under "Recent
// security activity", each with what it says happened, in the user's words.
// Only these: the log also holds events that mean nothing to a user
// (mfa.passed, sms.sent) and would crowd out the ones that matter.
var activityLabels = map[string]string{
	"login.succeeded":          "New sign-in",
	"login.failed":             "Failed sign-in attempt",
	"mfa.totp_enabled":         "2-Factor Auth turned on",
	"mfa.totp_disabled":        "2-Factor Auth turned off",
	"mfa.recovery_code_used":   "Recovery code used",
	"mfa.security_key_added":   "Security key added",
	"mfa.security_key_removed": "Security key removed",
	"mfa.reset":                "Second factors reset by support",
	"user.phone_verified":      "Cell phone added",
	"user.phone_removed":       "Cell phone removed",
	"user.password_changed":    "Password changed",
	"password.reset":           "Password reset",
	"user.email_changed":       "E-mail address changed",
}

const (
	// activityShown is how many events the account page lists.
	activityShown = 10
	// activityScanned is how many of the user's newest events are read to
	// find them: the curated ones are among the user's other events
	// (second factors passed, SMS sent), a few of each per login.
	activityScanned = 50
)

// recentActivity is the account page's "Recent security activity": the
// newest of the user's events in activityLabels, at most activityShown.
func (s *Server) recentActivity(ctx context.Context, userID string) ([]templates.ActivityItem, error) {
	events, err := s.store.ListAudit(ctx, storage.AuditQuery{UserID: userID, Limit: activityScanned})
	if err != nil {
		return nil, err
	}
	var items []templates.ActivityItem
	for _, e := range events {
		item, ok := activityItem(e)
		if !ok {
			continue
		}
		items = append(items, item)
		if len(items) == activityShown {
			break
		}
	}
	return items, nil
}

// activityItem is e as the account page shows it; false when the page does
// not show e.
func activityItem(e *storage.AuditEvent) (templates.ActivityItem, bool) {
	label, ok := activityLabels[e.Type]
	// A change that failed did not happen; only a failed sign-in is news.
	if !ok || e.Result == "failure" && e.Type != "login.failed" {
		return templates.ActivityItem{}, false
	}
	switch e.Type {
	case "mfa.security_key_added", "mfa.security_key_removed":
		if name := e.Details["name"]; name != "" {
			label += ": " + name
		}
	}
	item := templates.ActivityItem{Label: label, Time: formatDate(e.Time), IP: e.IP}
	// An operator's command has no browser; "Unknown browser" would alarm.
	if e.UserAgent != "" {
		item.Device = mfa.DescribeUserAgent(e.UserAgent)
	}
	return item, true
}

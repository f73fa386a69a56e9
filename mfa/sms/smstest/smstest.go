// Package smstest provides a fake Twilio Messages API on a loopback
// httptest server, for tests of package sms and of code that sends SMS.
// Point sms.TwilioOptions at it with URL, AccountSID, AuthToken and From.
//
// It deliberately does not import package sms, so that sms's own tests can
// use it.
package smstest

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Message is one message the fake accepted.
type Message struct {
	To                  string
	From                string // empty when sent through a Messaging Service
	MessagingServiceSID string // empty when sent from a number or sender ID
	Body                string
	Time                time.Time // when the fake accepted it
}

// Twilio is a fake Twilio REST API. It answers only
// POST /2010-04-01/Accounts/{AccountSID}/Messages.json, authenticated with
// AccountSID and AuthToken, and is safe for concurrent use.
type Twilio struct {
	URL        string // base URL, for sms.TwilioOptions.APIURL
	AccountSID string // "AC" and 32 hex digits, new for each fake
	AuthToken  string // 32 hex digits, new for each fake
	From       string // a sender number to configure, "+15005550006"

	srv  *httptest.Server
	done chan struct{} // closed at cleanup, to release delayed answers

	mu         sync.Mutex
	messages   []Message
	requests   int
	failNext   *answer
	failAlways *answer
	delay      time.Duration
}

type answer struct {
	status int
	body   string
}

// NewTwilio starts a fake Twilio with fresh credentials; t.Cleanup stops it.
func NewTwilio(t testing.TB) *Twilio {
	t.Helper()
	f := &Twilio{
		AccountSID: "AC" + randomHex(16),
		AuthToken:  randomHex(16),
		From:       "+15005550006", // Twilio's magic test sender number
		done:       make(chan struct{}),
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	f.URL = f.srv.URL
	t.Cleanup(func() {
		// Release delayed handlers first: Close waits for them.
		close(f.done)
		f.srv.Close()
	})
	return f
}

// Messages returns a copy of the accepted messages, oldest first.
func (f *Twilio) Messages() []Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Message(nil), f.messages...)
}

// Last returns the newest accepted message, failing the test if there is none.
func (f *Twilio) Last(t testing.TB) Message {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.messages) == 0 {
		t.Fatal("smstest: no message was sent")
	}
	return f.messages[len(f.messages)-1]
}

// Count returns how many messages the fake accepted.
func (f *Twilio) Count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.messages)
}

// Requests returns how many requests reached the fake, refused ones
// included: a test can check that a failure was not retried.
func (f *Twilio) Requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

// FailNext makes the next request, whatever it is, get this answer instead
// (e.g. 400 with TwilioError(21211, 400, ...), or 500 with "oops"). A body
// that is valid JSON is sent as application/json, any other as text/plain.
func (f *Twilio) FailNext(status int, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext = &answer{status, body}
}

// FailAlways makes every request get this answer until Reset. FailNext
// takes precedence for one request.
func (f *Twilio) FailAlways(status int, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failAlways = &answer{status, body}
}

// Reset forgets messages, request counts, failures and delay.
func (f *Twilio) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.messages = nil
	f.requests = 0
	f.failNext = nil
	f.failAlways = nil
	f.delay = 0
}

// SetDelay makes the fake answer each request d after it arrives, to test
// timeouts. A delayed request is dropped, unrecorded, if its client goes
// away first; delays end at cleanup.
func (f *Twilio) SetDelay(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.delay = d
}

// TwilioError returns an error body like Twilio's:
// {"code":21211,"message":"...","more_info":"https://www.twilio.com/docs/errors/21211","status":400}.
func TwilioError(code int, status int, message string) string {
	b, err := json.Marshal(restError{
		Code:     code,
		Message:  message,
		MoreInfo: "https://www.twilio.com/docs/errors/" + strconv.Itoa(code),
		Status:   status,
	})
	if err != nil {
		panic(err) // a struct of strings and ints always marshals
	}
	return string(b)
}

type restError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

// messageJSON is the Message resource as Twilio returns it on creation.
type messageJSON struct {
	AccountSID          string            `json:"account_sid"`
	APIVersion          string            `json:"api_version"`
	Body                string            `json:"body"`
	DateCreated         string            `json:"date_created"`
	DateSent            *string           `json:"date_sent"`
	DateUpdated         string            `json:"date_updated"`
	Direction           string            `json:"direction"`
	ErrorCode           *int              `json:"error_code"`
	ErrorMessage        *string           `json:"error_message"`
	From                *string           `json:"from"`
	MessagingServiceSID *string           `json:"messaging_service_sid"`
	NumMedia            string            `json:"num_media"`
	NumSegments         string            `json:"num_segments"`
	Price               *string           `json:"price"`
	PriceUnit           string            `json:"price_unit"`
	SID                 string            `json:"sid"`
	Status              string            `json:"status"`
	SubresourceURIs     map[string]string `json:"subresource_uris"`
	To                  string            `json:"to"`
	URI                 string            `json:"uri"`
}

func (f *Twilio) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests++
	delay := f.delay
	fail := f.failNext
	f.failNext = nil
	if fail == nil {
		fail = f.failAlways
	}
	f.mu.Unlock()

	if delay > 0 {
		timer := time.NewTimer(delay)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-r.Context().Done():
			return
		case <-f.done:
			return
		}
	}
	if fail != nil {
		contentType := "text/plain; charset=utf-8"
		if json.Valid([]byte(fail.body)) {
			contentType = "application/json"
		}
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(fail.status)
		_, _ = w.Write([]byte(fail.body)) // the client may be gone; nothing to do
		return
	}

	// Twilio checks credentials before it looks at the path.
	user, pass, ok := r.BasicAuth()
	if !ok || subtle.ConstantTimeCompare([]byte(user), []byte(f.AccountSID)) != 1 ||
		subtle.ConstantTimeCompare([]byte(pass), []byte(f.AuthToken)) != 1 {
		w.Header().Set("WWW-Authenticate", `Basic realm="Twilio API"`)
		writeJSON(w, http.StatusUnauthorized, restError{
			Code: 20003, Message: "Authenticate",
			MoreInfo: "https://www.twilio.com/docs/errors/20003", Status: http.StatusUnauthorized,
		})
		return
	}
	if r.URL.Path != "/2010-04-01/Accounts/"+f.AccountSID+"/Messages.json" {
		writeJSON(w, http.StatusNotFound, restError{
			Code: 20404, Message: "The requested resource " + r.URL.Path + " was not found",
			MoreInfo: "https://www.twilio.com/docs/errors/20404", Status: http.StatusNotFound,
		})
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, restError{
			Code: 20004, Message: "Method not allowed",
			MoreInfo: "https://www.twilio.com/docs/errors/20004", Status: http.StatusMethodNotAllowed,
		})
		return
	}

	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, restError{
			Code: 20001, Message: "Unable to parse the request: " + err.Error(),
			MoreInfo: "https://www.twilio.com/docs/errors/20001", Status: http.StatusBadRequest,
		})
		return
	}
	m := Message{
		To:                  r.PostForm.Get("To"),
		From:                r.PostForm.Get("From"),
		MessagingServiceSID: r.PostForm.Get("MessagingServiceSid"),
		Body:                r.PostForm.Get("Body"),
	}
	var missing *restError
	switch {
	case m.To == "":
		missing = &restError{Code: 21604, Message: "A 'To' phone number is required."}
	case m.From == "" && m.MessagingServiceSID == "":
		missing = &restError{Code: 21603, Message: "A 'From' phone number is required."}
	case m.Body == "":
		missing = &restError{Code: 21602, Message: "Message body is required."}
	}
	if missing != nil {
		missing.MoreInfo = "https://www.twilio.com/docs/errors/" + strconv.Itoa(missing.Code)
		missing.Status = http.StatusBadRequest
		writeJSON(w, http.StatusBadRequest, missing)
		return
	}

	m.Time = time.Now()
	sid := "SM" + randomHex(16)
	date := m.Time.UTC().Format(time.RFC1123Z)
	resp := messageJSON{
		AccountSID:  f.AccountSID,
		APIVersion:  "2010-04-01",
		Body:        m.Body,
		DateCreated: date,
		DateUpdated: date,
		Direction:   "outbound-api",
		NumMedia:    "0",
		NumSegments: "1",
		PriceUnit:   "USD",
		SID:         sid,
		Status:      "queued",
		To:          m.To,
		URI:         "/2010-04-01/Accounts/" + f.AccountSID + "/Messages/" + sid + ".json",
		SubresourceURIs: map[string]string{
			"media": "/2010-04-01/Accounts/" + f.AccountSID + "/Messages/" + sid + "/Media.json",
		},
	}
	if m.From != "" {
		resp.From = &m.From
	}
	if m.MessagingServiceSID != "" {
		resp.MessagingServiceSID = &m.MessagingServiceSID
		resp.NumSegments = "0" // Twilio has not picked a sender yet
	}

	f.mu.Lock()
	f.messages = append(f.messages, m)
	f.mu.Unlock()
	writeJSON(w, http.StatusCreated, resp)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b) // the client may be gone; nothing to do
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b)
}

package config

import (
	_ "embed"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"strings"
	"time"
)

// configSource is this package's own config.go: the doc and line comments of
// the Config fields are the descriptions of the keys.
//
//go:embed config.go
var configSource []byte

// KeyDoc documents one configuration key: what docs/configuration.md shows.
type KeyDoc struct {
	Key         string // e.g. "sms.twilio.api_url"; a client's fields are "clients[].id"
	Env         string // the IDP_* variable; empty for keys set only in the file
	Type        string // string, boolean, integer, duration, list of strings, list of clients
	Default     string // the value in Defaults(), formatted as in the file; empty for none
	Description string // from the field's comment in config.go
}

// MissingDescriptionsError lists the keys whose field in config.go has no
// comment.
type MissingDescriptionsError struct {
	Keys []string
}

func (e *MissingDescriptionsError) Error() string {
	return "configuration keys without a description (add a comment to their field in config/config.go): " +
		strings.Join(e.Keys, ", ")
}

// Reference documents every configuration key, in the order of the Config
// struct: the keys of Keys(), then the clients list and the fields of one
// client. When some key has no comment, the list is still returned, with a
// *MissingDescriptionsError naming those keys.
func Reference() ([]KeyDoc, error) {
	comments, err := fieldComments(configSource)
	if err != nil {
		return nil, err
	}
	r := referenceBuilder{comments: comments}
	r.walk(reflect.ValueOf(Defaults()), "", "")
	if len(r.errs) > 0 {
		return nil, errors.Join(r.errs...)
	}
	if len(r.missing) > 0 {
		return r.docs, &MissingDescriptionsError{Keys: r.missing}
	}
	return r.docs, nil
}

type referenceBuilder struct {
	comments map[string]map[string]string // type name -> field name -> comment
	docs     []KeyDoc
	missing  []string
	errs     []error
}

// walk documents the keys under v (a struct), with keys starting with
// prefix. fileOnly names the list (clients) that v is an element of: such
// keys have no environment variable.
func (r *referenceBuilder) walk(v reflect.Value, prefix string, fileOnly string) {
	t := v.Type()
	fields, ok := r.comments[t.Name()]
	if !ok {
		r.errs = append(r.errs, fmt.Errorf("config: type %s is not declared in config.go, where the key descriptions are read", t.Name()))
		return
	}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("mapstructure")
		if tag == "" || !f.IsExported() {
			continue
		}
		key := prefix + tag
		fv := v.Field(i)
		if fv.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Duration]() {
			r.walk(fv, key+".", fileOnly)
			continue
		}
		doc := KeyDoc{Key: key, Description: describe(fields[f.Name], f.Name, key, prefix, t)}
		if fileOnly == "" {
			doc.Env = EnvName(key)
		}
		switch {
		case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.Struct:
			doc.Env = ""
			doc.Type = "list of " + tag
		default:
			doc.Type = typeName(f.Type)
			doc.Default = formatDefault(fv)
		}
		r.docs = append(r.docs, doc)
		if doc.Description == "" {
			r.missing = append(r.missing, key)
		}
		if fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.Struct {
			r.walk(reflect.New(fv.Type().Elem()).Elem(), key+"[].", key)
		}
	}
}

// describe turns a field's comment into a key's description: the Go name
// the comment starts with (Go's convention) becomes the key, and so does a
// second field named right after it ("TotalHour and TotalDay are ...").
func describe(comment, fieldName, key, prefix string, t reflect.Type) string {
	words := strings.SplitN(comment, " ", 4)
	if len(words) == 0 || strings.TrimRight(words[0], ":,") != fieldName {
		return comment
	}
	words[0] = "`" + key + "`" + strings.TrimPrefix(words[0], fieldName)
	if len(words) >= 3 && words[1] == "and" {
		if f, ok := t.FieldByName(words[2]); ok && f.Tag.Get("mapstructure") != "" {
			words[2] = "`" + prefix + f.Tag.Get("mapstructure") + "`"
		}
	}
	return strings.Join(words, " ")
}

func typeName(t reflect.Type) string {
	if t == reflect.TypeFor[time.Duration]() {
		return "duration"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Slice:
		return "list of " + typeName(t.Elem()) + "s"
	}
	return t.String()
}

// formatDefault writes a default as it would be written in the file: 720h,
// not 720h0m0s; lists comma-separated, as in the environment.
func formatDefault(v reflect.Value) string {
	if d, ok := v.Interface().(time.Duration); ok {
		s := d.String()
		if strings.HasSuffix(s, "m0s") {
			s = strings.TrimSuffix(s, "0s")
		}
		if strings.HasSuffix(s, "h0m") {
			s = strings.TrimSuffix(s, "0m")
		}
		return s
	}
	if v.Kind() == reflect.Slice {
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = fmt.Sprint(v.Index(i).Interface())
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v.Interface())
}

// fieldComments reads the comment of every field of every struct type
// declared in src: the doc comment, then the line comment, as one line.
func fieldComments(src []byte) (map[string]map[string]string, error) {
	file, err := parser.ParseFile(token.NewFileSet(), "config.go", src, parser.ParseComments)
	if err != nil {
		return nil, fmt.Errorf("config: reading the key descriptions: %w", err)
	}
	out := map[string]map[string]string{}
	for _, decl := range file.Decls {
		gen, ok := decl.(*ast.GenDecl)
		if !ok || gen.Tok != token.TYPE {
			continue
		}
		for _, spec := range gen.Specs {
			ts := spec.(*ast.TypeSpec)
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				continue
			}
			fields := map[string]string{}
			for _, f := range st.Fields.List {
				var parts []string
				for _, g := range []*ast.CommentGroup{f.Doc, f.Comment} {
					if text := strings.Join(strings.Fields(g.Text()), " "); text != "" {
						parts = append(parts, text)
					}
				}
				for _, name := range f.Names {
					fields[name.Name] = strings.Join(parts, " ")
				}
			}
			out[ts.Name.Name] = fields
		}
	}
	return out, nil
}

// ReferenceMarkdown is docs/configuration.md: the text around the table of
// Reference(). Keys without a description are shown with an empty cell and
// reported in the error, as by Reference.
func ReferenceMarkdown() (string, error) {
	docs, err := Reference()
	var missing *MissingDescriptionsError
	if err != nil && !errors.As(err, &missing) {
		return "", err
	}
	var b strings.Builder
	b.WriteString(referenceIntro)
	b.WriteString("| key | environment variable | type | default | description |\n|---|---|---|---|---|\n")
	for _, d := range docs {
		if strings.HasPrefix(d.Key, "clients[].") {
			continue
		}
		env := "file only"
		if d.Env != "" {
			env = code(d.Env)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", code(d.Key), env, d.Type, code(d.Default), cell(d.Description))
	}
	b.WriteString(referenceClients)
	b.WriteString("| key | type | description |\n|---|---|---|\n")
	for _, d := range docs {
		if strings.HasPrefix(d.Key, "clients[].") {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", code(d.Key), d.Type, cell(d.Description))
		}
	}
	return b.String(), err
}

// code puts s in a code span (empty stays empty); a backtick inside gets a
// longer fence.
func code(s string) string {
	if s == "" {
		return ""
	}
	fence := "`"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	if strings.Contains(s, "`") {
		return fence + " " + cell(s) + " " + fence
	}
	return fence + cell(s) + fence
}

// cell keeps s inside one table cell.
func cell(s string) string {
	return strings.ReplaceAll(s, "|", `\|`)
}

const referenceIntro = `<!-- Generated from config/config.go by ` + "`go test ./config -run Reference -update`" + `: do not edit by hand. -->

# Configuration reference

Every key of the provider, generated from the ` + "`Config`" + ` struct in
[config/config.go](../config/config.go): the descriptions are its field
comments, the defaults are ` + "`config.Defaults()`" + `. A test fails when this file
and the code disagree.

The configuration is read in this order, each step overriding the one
before:

1. the embedded defaults (the **default** column);
2. the YAML file given with ` + "`--config FILE`" + ` (or named by ` + "`IDP_CONFIG`" + `), where
   ` + "`sms.twilio.api_url`" + ` is written as ` + "`sms: {twilio: {api_url: ...}}`" + `;
3. environment variables: ` + "`IDP_`" + ` and the key in upper case with ` + "`_`" + ` for
   ` + "`.`" + ` (the **environment variable** column).

Durations take a unit (` + "`90s`, `10m`, `720h`" + `; a bare number is refused).
Lists are YAML lists in the file and comma-separated in the environment
(` + "`IDP_SMS_ALLOWED_COUNTRIES=US,CA`" + `). Unknown keys, unknown ` + "`IDP_*`" + `
variables and invalid values stop the start, all reported at once, each
naming its key; every operator command (` + "`idp user ...`" + `, ` + "`idp migrate`" + `, ...)
reads the same configuration as ` + "`idp serve`" + `.

Keep secrets (` + "`secret_key`, `sms.twilio.auth_token`, `email.smtp.password`" + `)
in the environment rather than in the file.

`

const referenceClients = `
## Clients in the file

` + "`clients`" + ` is a list of relying parties, each with the fields of ` + "`idp client add`" + `.
It can only be written in the file (` + "`IDP_CLIENTS`" + ` is refused). ` + "`idp serve`" + `
writes these clients to the database at start, updates the ones that
changed and removes the ones that left the file; an id added with
` + "`idp client add`" + ` cannot also be declared here. Without ` + "`grants`" + ` a client
gets ` + "`authorization_code`" + ` and ` + "`refresh_token`" + `.

` + "```yaml" + `
clients:
  - id: portal
    name: Client Portal
    secret: "a-long-random-secret-of-at-least-32-characters"
    redirect_uris: [https://portal.example.com/callback]
    post_logout_redirect_uris: [https://portal.example.com/]
    first_party: true
` + "```" + `

`
